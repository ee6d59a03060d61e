"""`evaluate`, `genlab eval / compare / report` and the HTML report (rendered in headless Chromium)."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from conftest import fit_tiny
from genlab.cli import main
from genlab.data import Dataset
from genlab.evaluate import CACHE_ENV, EvalSettings, evaluate, feature_classifier
from genlab.metrics.classifier import classifier_features
from genlab.protocol import Density, GenerativeModel, Latent, NotSupported


@pytest.fixture(autouse=True)
def _one_thread_and_private_cache(monkeypatch, tmp_path_factory):
    """Metrics are many small tensor operations: one thread avoids contention on a shared machine."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.getbasetemp() / "cache"))
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@dataclass
class CopierConfig:
    pass


class Copier(GenerativeModel):
    """A 'model' that returns training examples: what memorization must flag."""

    Config = CopierConfig
    density = Density.NONE
    name = "copier"

    def setup(self, x, y=None, x_val=None):
        self.register_buffer("data", x.clone())

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None):
        return self.data[torch.randint(len(self.data), (n,), generator=generator)]


class Encoder(Copier, Latent):
    """A copier whose encoder raises what it is given: a refusal or a bug."""

    latent_dim = 2

    def __init__(self, spec, config, error):
        super().__init__(spec, config)
        self.error = error

    def encode(self, x):
        raise self.error

    def decode(self, codes):
        return codes


def _halves(ds: Dataset) -> tuple[Dataset, Dataset]:
    k = len(ds) * 3 // 4
    return ds.subset(torch.arange(k)), ds.subset(torch.arange(k, len(ds)))


def test_evaluate_says_why_and_flags_a_model_that_copies(moons):
    train, test = _halves(moons)
    copier = Copier(train.spec, CopierConfig())
    copier.setup(train.x)
    res = evaluate(copier, train, test)
    mem = res["metrics"]["memorization"]
    assert mem["flagged"] and mem["exact_copy_share"]["value"] == 1.0
    assert "density is none" in res["not_computed"]["nll"]
    assert "labels" in res["not_computed"]["classifier_fid"]
    assert "latent" in res["not_computed"]["reconstruction_rmse"]
    gmm, _ = fit_tiny("gmm", train, epochs=5)
    res = evaluate(gmm, train, test, settings=EvalSettings(ais_steps=2))
    assert "Gaussian latents" in res["not_computed"]["ais"]  # AIS over codes: VAEs only
    assert not res["metrics"]["memorization"]["flagged"]
    for k in ("mmd", "precision", "recall", "density", "coverage"):
        assert res["metrics"][k]["n"] == len(test) and k in res["floor"]
    assert res["floor"]["precision"]["value"] > res["metrics"]["precision"]["value"] - 0.3
    assert res["metrics"]["nll_is"] == "exact" and res["metrics"]["sampling_speed"]["value"] > 0
    json.dumps(res)  # JSON-able


def test_evaluate_on_images_uses_classifier_features_and_fid_refuses_few(digits):
    train, test = _halves(digits)
    vae, _ = fit_tiny("vae", train, epochs=1)
    res = evaluate(vae, train, test)
    assert res["features"]["kind"] == "classifier"
    assert "min_examples=2000" in res["not_computed"]["classifier_fid"]
    res = evaluate(vae, train, test, settings=EvalSettings(fid_min_examples=20))
    fid, floor = res["metrics"]["classifier_fid"], res["floor"]["classifier_fid"]
    assert fid["n"] == floor["n"] == len(test) and fid["value"] >= 0 and floor["stderr"] > 0
    assert res["metrics"]["reconstruction_rmse"]["n"] == len(test)
    assert res["features"]["classifier"]["cached"]  # the first call trained and cached it
    assert res["features"]["classifier"]["path"].startswith(os.environ[CACHE_ENV])  # the default folder
    assert "ais" not in res["metrics"] and "ais" not in res["not_computed"]  # off by default
    res = evaluate(vae, train, test, settings=EvalSettings(ais_steps=20, ais_examples=10, classifier=False))
    ais = res["metrics"]["ais_nll_nats"]
    assert ais["n"] == 10 and math.isfinite(ais["value"]) and res["metrics"]["ais_bits_per_dim"]["value"] > 0


def test_a_refusal_is_listed_and_a_bug_propagates(moons):
    train, test = _halves(moons)
    settings = EvalSettings(max_examples=40)
    refusing = Encoder(train.spec, CopierConfig(), NotSupported("this encoder refuses"))
    refusing.setup(train.x)
    res = evaluate(refusing, train, test, settings=settings, classifier_cache=None)
    assert res["not_computed"]["reconstruction_rmse"] == "this encoder refuses"
    assert "reconstruction_rmse" not in res["metrics"] and res["metrics"]["mmd"]["n"] == 40
    buggy = Encoder(train.spec, CopierConfig(), RuntimeError("a bug in encode"))
    buggy.setup(train.x)
    with pytest.raises(RuntimeError, match="a bug in encode"):
        evaluate(buggy, train, test, settings=settings, classifier_cache=None)


def test_samples_with_nan_leave_the_sample_metrics_not_computed(moons):
    train, test = _halves(moons)
    copier = Copier(train.spec, CopierConfig())
    copier.setup(train.x)
    copier.data[::2] = float("nan")  # about half the samples
    res = evaluate(copier, train, test, settings=EvalSettings(max_examples=40), classifier_cache=None)
    assert res["metrics"]["sampling_speed"]["n"] == 40 and "features" not in res
    for k in ("mmd", "precision", "coverage", "classifier_fid", "memorization"):
        assert res["not_computed"][k].startswith("no samples: ") and "NaN or Inf" in res["not_computed"][k]


def test_feature_classifier_cache_is_an_explicit_folder(tmp_path, digits):
    train, test = _halves(digits)
    clf, info = feature_classifier(train, test, name="digits", cache=tmp_path)
    assert not info["cached"] and info["path"].startswith(str(tmp_path / "classifiers"))
    assert info["val_accuracy"] > 0.5 and info["train_accuracy"] > 0.8
    again, info2 = feature_classifier(train, name="digits", cache=tmp_path)
    assert info2["cached"] and info2["hash"] == info["hash"]
    assert torch.equal(classifier_features(clf, test.x), classifier_features(again, test.x))
    relabelled = Dataset(train.x, (train.y + 1) % 10, train.spec, "digits")
    _, info3 = feature_classifier(relabelled, name="digits", cache=tmp_path)  # other labels: another one
    assert not info3["cached"] and info3["hash"] != info["hash"]
    path = tmp_path / "classifiers" / (info["path"].rsplit("/", 1)[1])
    path.write_bytes(path.read_bytes()[:100])  # a damaged entry is trained again, not trusted
    _, info4 = feature_classifier(train, name="digits", cache=tmp_path)
    assert not info4["cached"] and info4["hash"] == info["hash"]
    files = sorted(p.name for p in tmp_path.rglob("*"))
    _, info5 = feature_classifier(train, name="digits", cache=None)
    assert info5["path"] is None and not info5["cached"] and sorted(p.name for p in tmp_path.rglob("*")) == files


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _not_blank(png) -> bool:
    from PIL import Image

    a = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    return (a < 200).mean() > 0.01 and a.std() > 10


def test_compare_report_eval_from_the_command_line(capsys, tmp_path):
    out = tmp_path / "cmp"
    # one job: each worker process costs seconds of imports (workers: the two-jobs test below)
    code, text, err = _run(capsys, "compare", "--data", "moons", "--n", 400, "--families", "gaussian,vae",
                           "--budget", 0.01, "--set", "vae.hidden=16", "--set", "vae.latent_dim=2", "--out", out,
                           "--jobs", 1)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert [f["family"] for f in res["families"]] == ["gaussian", "vae"]
    assert all(f["status"] == "ok" for f in res["families"]) and res["budget_minutes"] == 0.01
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5 and "<table class=\"sortable\"" in html
    assert "held-out data (floor)" in html and "needs classifier features" in html
    assert "http://" not in html and "https://" not in html  # self-contained
    run = out / "runs" / "vae"
    code, text, err = _run(capsys, "report", run)
    assert code == 0, err
    assert (run / "report.html").is_file()
    code, text, err = _run(capsys, "eval", run)
    assert code == 0, err
    assert "not computed: classifier_fid" in text and "precision" in text
    assert json.loads((run / "eval.json").read_text())["metrics"]["recall"]["n"] == 40
    code, _, err = _run(capsys, "compare", "--data", "moons", "--families", "gaussian,nosuch", "--out", out)
    assert code == 2 and "unknown family" in err
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed; the report was not rendered")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,900", (out / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and _not_blank(shot)


def test_compare_reports_a_failing_family_in_its_row(tmp_path, monkeypatch):
    import genlab.compare as cmp

    def broken(model, *a, **k):
        raise RuntimeError("sampler exploded")
    monkeypatch.setattr(cmp, "evaluate", broken)
    res = cmp.compare("moons", ["gaussian"], 0.01, out=tmp_path / "c", n=200, verbose=False)
    assert res["families"][0]["status"] == "failed" and "sampler exploded" in res["families"][0]["error"]
    assert "sampler exploded" in (tmp_path / "c" / "report.html").read_text()
    with pytest.raises(ValueError, match="not among --families"):
        cmp.compare("moons", ["gaussian"], 0.01, out=tmp_path / "d", configs={"vae": {"hidden": 8}})
    # one folder, one comparison: a second invocation is refused unless it replaces the first
    with pytest.raises(ValueError, match="already holds a comparison .*'moons'.*--overwrite"):
        cmp.compare("circles", ["gmm"], 0.01, out=tmp_path / "c", n=200, verbose=False)
    monkeypatch.undo()
    cmp.compare("circles", ["gmm"], 0.01, out=tmp_path / "c", n=200, verbose=False, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "c" / "runs").iterdir()) == ["gmm"]


@pytest.mark.slow  # two worker processes import torch: ~19 CPU-s; .ci/run's second step runs it
def test_compare_gives_the_same_numbers_in_one_process_and_in_two_jobs(tmp_path):
    import genlab.compare as cmp

    from genlab.evaluate import EvalSettings

    kw = dict(budget_minutes=0.05, n=300, verbose=False, settings=EvalSettings(max_examples=40))
    one = cmp.compare("moons", ["gaussian", "gmm", "bayesnet"], out=tmp_path / "one", jobs=1, **kw)
    two = cmp.compare("moons", ["gaussian", "gmm", "bayesnet"], out=tmp_path / "two", jobs=2, **kw)
    assert one["jobs"] == 1 and two["jobs"] == 2
    for a, b in zip(one["families"], two["families"]):
        assert a["family"] == b["family"] and a["status"] == b["status"]
        if a["status"] == "ok":
            assert a["eval"]["metrics"]["nll_nats"] == b["eval"]["metrics"]["nll_nats"]
            assert a["eval"]["metrics"]["mmd"]["value"] == b["eval"]["metrics"]["mmd"]["value"]
    # bayesnet (a directed graphical model) cannot model continuous data: its row says why and what to use
    bn = one["families"][2]
    assert bn["status"] == "not supported" and "no family of the row 'directed graphical model'" in bn["error"]
    table = one["taxonomy"]["rows"]
    assert [r["family"] for r in table] == ["gaussian", "gmm", "bayesnet"] and "error" in table[2]
    assert table[0]["density"]["word"] == "exact" and table[0]["textbook"]["density"] == "exact"
    html = (tmp_path / "one" / "report.html").read_text()
    assert html.index("The taxonomy table, measured") < html.index("Family table")


def test_compare_on_discrete_images_measures_the_codecs_beside_the_families(tmp_path):
    import genlab.compare as cmp
    from genlab.evaluate import EvalSettings

    res = cmp.compare("digits", ["gaussian"], 0.05, out=tmp_path / "c", n=400, verbose=False, jobs=1,
                      settings=EvalSettings(max_examples=40, classifier=False))
    codecs = res["references"]["codecs_bits_per_dim"]
    assert set(codecs) == {"png", "webp", "lzma"} and all(0 < b < 8 for b in codecs.values())
    assert res["taxonomy"]["codecs_bits_per_dim"] == codecs
    gauss = res["taxonomy"]["rows"][0]["density"]["bits_per_dim"]["value"]
    above = [n for n in res["taxonomy"]["disagreements"] if "lossless codec" in n]
    assert bool(above) == (gauss > min(codecs.values()))
    assert "reference: lossless codec" in (tmp_path / "c" / "report.html").read_text()
