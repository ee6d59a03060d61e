"""The command line's rough edges, each fixed and held: --threads everywhere, eval of API-written
runs, text figures, Bayesian networks and binarized images by name, fortunes split by entry,
text samples, read-only outputs, the torchrun-safe flag, --version / metrics / --config, progress
off a terminal, and commands that start without importing torch."""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import genlab
from genlab.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def gauss_run(tmp_path_factory):
    """A tiny CLI run of a Gaussian on 200 moons (trains in one step)."""
    out = tmp_path_factory.mktemp("cli") / "gauss"
    assert main(["train", "gaussian", "--data", "moons", "--n-examples", "200", "--out", str(out),
                 "--no-progress"]) == 0
    return out


TEXT = "".join(f"entry {i}: the quick brown fox {'jumps ' * (i % 4)}over dog {i * 7}.\n" for i in range(120))


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A tiny transformer trained one epoch on a small .txt file."""
    folder = tmp_path_factory.mktemp("text")
    (folder / "corpus.txt").write_text(TEXT)
    out = folder / "tx"
    assert main(["train", "transformer", "--data", str(folder / "corpus.txt"), "--epochs", "1", "--out", str(out),
                 "--set", "d_model=16", "--set", "n_layers=1", "--set", "n_heads=2", "--no-progress",
                 "--threads", "1"]) == 0
    return out


def _subparser(command: str) -> argparse.ArgumentParser:
    p = build_parser(command)
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


# -- 1. --threads on every command that computes -------------------------------------------------------
@pytest.mark.parametrize("argv", [["sample", "R", "--out", "x.npy"], ["eval", "R"], ["report", "R"],
                                  ["impute", "R", "--data", "d", "--mask", "mcar:0.1"], ["outliers", "R", "--data", "d"],
                                  ["interpolate", "R", "--out", "x.png"], ["translate", "R", "x.png"],
                                  ["compress", "R", "d", "o.glz"], ["decompress", "R", "o.glz", "x.npy"],
                                  ["compare"], ["train", "gaussian"]])
def test_threads_parses_as_an_int_on_every_computing_command(argv):
    args = build_parser(argv[0]).parse_args([*argv, "--threads", "3"])
    assert args.threads == 3 and type(args.threads) is int


def test_threads_and_device_apply_to_sample(capsys, tmp_path, gauss_run):
    torch.set_num_threads(2)
    code, out, err = run(capsys, "sample", gauss_run, "-n", 5, "--out", tmp_path / "s.npy", "--threads", 1,
                         "--device", "cpu")
    assert code == 0, err
    assert np.load(tmp_path / "s.npy").shape == (5, 2)
    assert torch.get_num_threads() == 2  # restored after the command
    with pytest.raises(SystemExit):
        build_parser("sample").parse_args(["sample", "R", "--out", "x.npy", "--threads", "0"])
    assert "integer >= 1" in capsys.readouterr().err


# -- 2. eval --data on a run written by the Python API --------------------------------------------------
def test_eval_with_data_works_on_a_run_written_by_the_python_api(capsys, tmp_path):
    from genlab.data import load_dataset, split

    x = load_dataset("moons", n=300, seed=1).x.numpy()
    np.save(tmp_path / "moons.npy", x)
    s = split(load_dataset(str(tmp_path / "moons.npy")), seed=0)
    model = genlab.make("gaussian", s.train.spec, seed=0)
    genlab.Trainer(model, genlab.train.TrainConfig(epochs=1, progress=False), out=tmp_path / "api").fit(
        s.train.x, s.train.y, s.val.x)
    code, _, err = run(capsys, "eval", tmp_path / "api")
    assert code == 2 and "pass --data" in err.replace("\n  ", " ")  # says what to do, no KeyError
    code, text, err = run(capsys, "eval", tmp_path / "api", "--data", tmp_path / "moons.npy", "--max-examples", 100)
    assert code == 0, err
    result = json.loads((tmp_path / "api" / "eval.json").read_text())
    assert result["n"] == len(s.test) and result["n_train"] == len(s.train)  # --data split as train splits it
    assert "(test split)" in result["data"] and "nll_nats" in result["metrics"]


# -- 3. perplexity and bits per character for text ------------------------------------------------------
def test_eval_of_a_text_model_reports_perplexity_and_bits_per_char(capsys, text_run):
    code, text, err = run(capsys, "eval", text_run, "--metrics", "nll")
    assert code == 0, err
    m = json.loads((text_run / "eval.json").read_text())["metrics"]
    seq_len = genlab.load(text_run).spec.dim
    assert m["perplexity"]["value"] == pytest.approx(math.exp(m["nll_nats"]["value"] / seq_len), rel=1e-9)
    assert m["bits_per_char"]["value"] == pytest.approx(m["bits_per_dim"]["value"], rel=1e-9)
    assert 1 < m["perplexity"]["value"] < genlab.load(text_run).spec.levels * 1.5
    assert "perplexity" in text and "bits_per_char" in text


# -- 4. Bayesian networks by name and by path ----------------------------------------------------------
@pytest.mark.parametrize("name", ["asia", "sachs", "alarm"])
def test_every_bundled_network_loads_as_bif_name(name):
    from genlab.data import load_dataset
    from genlab.data.datasets import network_names
    from genlab.pgm.bif import read_bif

    assert name in network_names()
    ds = load_dataset(f"bif:{name}", n=50)
    net = read_bif(f"bif:{name}")
    assert ds.name == f"bif:{name}" and ds.spec.event_shape == (len(net.names),)
    assert ds.spec.cardinalities == tuple(max(2, c) for c in net.cards)


def test_a_bif_file_loads_by_path_and_trains_from_the_cli(capsys, tmp_path):
    from genlab.data import load_dataset
    from genlab.pgm.bif import NETWORK_DIR

    gz = tmp_path / "net.bif.gz"
    gz.write_bytes((NETWORK_DIR / "sachs.bif.gz").read_bytes())
    (tmp_path / "net.bif").write_bytes(gzip.decompress(gz.read_bytes()))
    ref = load_dataset("bif:sachs", n=40)
    for source in (gz, tmp_path / "net.bif", f"bif:{tmp_path / 'net.bif'}"):
        assert torch.equal(load_dataset(str(source), n=40).x, ref.x), source
    code, _, err = run(capsys, "train", "bayesnet", "--data", "bif:sachs", "--n", 300, "--out", tmp_path / "bn",
                       "--no-progress")
    assert code == 0, err
    assert json.loads((tmp_path / "bn" / "config.json").read_text())["spec"]["event_shape"] == [11]
    code, _, err = run(capsys, "train", "bayesnet", "--data", "bif:nosuchnet", "--out", tmp_path / "bn2")
    assert code == 2 and "nosuchnet" in err and "sachs" in err


# -- 5. binarized image data by name --------------------------------------------------------------------
def test_binary_suffix_thresholds_at_half_the_grey_scale():
    from genlab.data import load_dataset
    from genlab.data.spec import Kind

    digits = load_dataset("digits", n=100)
    b = load_dataset("digits:binary", n=100)
    assert b.spec.kind is Kind.BINARY and b.spec.levels == 2 and b.spec.num_classes == 10
    assert torch.equal(b.x, (digits.x >= 8).float()) and torch.equal(b.y, digits.y)
    assert torch.equal(load_dataset("digits:binary=12", n=100).x, (digits.x >= 12).float())
    m = load_dataset("mnist5k", n=20)
    assert torch.equal(load_dataset("mnist5k:binary", n=20).x, (m.x >= 128).float())  # the benches' rule
    for bad, words in (("moons:binary", "ordered levels"), ("digits:binary=99", "threshold"),
                       ("digits:binary=x", "number")):
        with pytest.raises(ValueError, match=words):
            load_dataset(bad, n=10)


def test_an_rbm_trains_on_binarized_digits_from_the_cli(capsys, tmp_path):
    code, _, err = run(capsys, "train", "rbm", "--data", "digits:binary", "--n", 200, "--epochs", 1,
                       "--set", "hidden=8", "--set", "sample_steps=5", "--set", "chains=10", "--out", tmp_path / "rbm",
                       "--no-progress")
    assert code == 0, err
    cfg = json.loads((tmp_path / "rbm" / "config.json").read_text())
    assert cfg["spec"]["kind"] == "binary" and cfg["data"]["name"] == "digits:binary"


# -- 6. fortunes split by whole fortunes ----------------------------------------------------------------
def test_the_cli_split_of_fortunes_holds_out_whole_fortunes(tmp_path, monkeypatch):
    from genlab.data.text import ENTRY_END, FORTUNES_ENV, vocab_of
    from genlab.runs import load_splits

    rng = np.random.default_rng(0)
    words = ["cat", "moon", "river", "stone", "lamp", "wind", "salt", "glass"]
    entries = [" ".join(rng.choice(words, rng.integers(8, 40))) + f" #{i}\n" for i in range(80)]
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "sayings").write_text("%\n".join(entries))
    monkeypatch.setenv(FORTUNES_ENV, str(tmp_path / "f"))
    s = load_splits({"name": "fortunes", "seed": 0, "split_seed": 0, "val": 0.1, "test": 0.1, "n": None})
    vocab = vocab_of(s.train.spec)
    train_text = "".join(vocab.decode(c) for c in s.train.x)
    test_chunks = [vocab.decode(c) for c in s.test.x]
    assert len(test_chunks) > 0 and len(s.val) > 0
    test_entries = {e for e in entries if e + ENTRY_END in s.texts["test"]}
    for chunk in test_chunks:  # each test chunk is cut from the test fortunes' own text
        assert chunk in s.texts["test"]
    for e in entries:  # no test fortune is in training, and no training fortune in test
        assert not (e in test_entries and e in train_text)
    assert test_entries and not any(e in train_text for e in test_entries)
    placed = [sum(e + ENTRY_END in s.texts[k] for k in ("train", "val", "test")) for e in entries]
    assert max(placed) == 1 and sum(placed) >= len(entries) - 1  # each once (the cut-off tail: nowhere)
    again = load_splits({"name": "fortunes", "seed": 0, "split_seed": 0, "val": 0.1, "test": 0.1, "n": None})
    assert torch.equal(again.test.x, s.test.x)  # deterministic from the seed


# -- 7. sample writes text for text models, never into the run, and says when it cannot write ---------
def test_sample_writes_decoded_text_for_a_text_model(capsys, tmp_path, text_run):
    code, _, err = run(capsys, "sample", text_run, "-n", 3, "--out", tmp_path / "s.txt")
    assert code == 0, err
    body = (tmp_path / "s.txt").read_text()
    assert body.count("--- sample ") == 3 and set(body) <= set(TEXT) | set("-sampl0123456789 \n\ufffd")
    code, _, err = run(capsys, "sample", text_run, "-n", 3, "--out", tmp_path / "s.png")
    assert code == 2 and ".txt" in err


def test_sample_never_writes_into_the_run_it_reads(capsys, tmp_path, gauss_run):
    def snapshot():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in gauss_run.iterdir()}

    before = snapshot()
    code, _, err = run(capsys, "sample", gauss_run, "-n", 4, "--out", tmp_path / "s.csv")
    assert code == 0, err
    code, _, err = run(capsys, "sample", gauss_run, "-n", 4, "--out", gauss_run / "mine.npy")
    assert code == 2 and "inside the run directory" in err
    code, _, err = run(capsys, "sample", gauss_run, "-n", 4, "--out", tmp_path / "s.txt")
    assert code == 2 and "text models" in err
    assert snapshot() == before


def test_an_unwritable_output_gives_one_line_not_a_traceback(capsys, tmp_path, gauss_run, monkeypatch):
    def refuse(path, *a, **k):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(np, "save", refuse)
    code, _, err = run(capsys, "sample", gauss_run, "-n", 4, "--out", tmp_path / "ro" / "s.npy")
    assert code == 2
    assert err.startswith("genlab: error:") and "Permission denied" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2


# -- 8. the torchrun-safe name of --n -------------------------------------------------------------------
def test_every_train_flag_passes_through_torchrun():
    from torch.distributed.run import get_args_parser

    fam = next(a for a in _subparser("train")._actions if isinstance(a, argparse._SubParsersAction)).choices["vae"]
    flags = [o for a in fam._actions for o in a.option_strings if o.startswith("--") and o not in ("--n", "--help")]
    assert "--n-examples" in flags
    for flag in flags:
        args = get_args_parser().parse_args(["--nproc-per-node", "2", "-m", "genlab", "train", "vae", flag, "7"])
        assert args.training_script_args == ["train", "vae", flag, "7"], flag
    parsed = build_parser("train").parse_args(["train", "vae", "--n-examples", "7"])
    assert parsed.n == 7 and build_parser("train").parse_args(["train", "vae", "--n", "7"]).n == 7
    assert "--n-examples" in " ".join(fam.format_help().split()) and "torchrun" in fam.format_help()


# -- 9. --version, metrics, --metrics, --config -----------------------------------------------------------
def test_version_and_the_metric_list(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"genlab {genlab.__version__}"
    code, out, _ = run(capsys, "metrics")
    assert code == 0
    from genlab.cli.metrics import FIGURES, rows
    from genlab.evaluate import METRICS

    for spec in METRICS:  # the list keeps step with the metric table
        assert spec.names[0] in rows() and all(n in FIGURES or n in rows() for n in spec.names)
    for name, f in FIGURES.items():
        assert name in out and f.unit in out


def test_eval_metrics_picks_a_subset(capsys, gauss_run):
    code, _, err = run(capsys, "eval", gauss_run, "--metrics", "nll")
    assert code == 0, err
    res = json.loads((gauss_run / "eval.json").read_text())
    assert set(res["metrics"]) <= {"nll_nats", "bits_per_dim", "nll_is"} and "nll_nats" in res["metrics"]
    code, _, err = run(capsys, "eval", gauss_run, "--metrics", "pr,mmd", "--max-examples", 100)
    assert code == 0, err
    res = json.loads((gauss_run / "eval.json").read_text())
    assert set(res["metrics"]) == {"precision", "recall", "density", "coverage", "mmd", "sampling_speed"}  # one
    # row gives precision, recall, density and coverage; the sampling row makes the samples they need
    from genlab.cli.metrics import FIGURES
    assert set(res["metrics"]) | set(res["floor"]) <= set(FIGURES)
    code, _, err = run(capsys, "eval", gauss_run, "--metrics", "nll,bogus")
    assert code == 2 and "bogus" in err and "genlab metrics" in err


def test_config_file_trains_and_a_runs_config_reruns_it(capsys, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"family": "gmm", "data": {"name": "moons", "n": 240}, "config": {"n_components": 2},
                               "trainer": {"epochs": 2, "progress": False}}))
    code, _, err = run(capsys, "train", "--config", cfg, "--out", tmp_path / "a")
    assert code == 0, err
    a = json.loads((tmp_path / "a" / "config.json").read_text())
    assert a["family"] == "gmm" and a["data"]["n"] == 240 and a["config"]["n_components"] == 2
    code, _, err = run(capsys, "train", "--config", tmp_path / "a" / "config.json", "--out", tmp_path / "b")
    assert code == 0, err
    b = json.loads((tmp_path / "b" / "config.json").read_text())
    assert (b["data"], b["config"], b["trainer"]) == (a["data"], a["config"], a["trainer"])
    assert genlab.load(tmp_path / "a").state_dict().keys() == genlab.load(tmp_path / "b").state_dict().keys()
    for k, v in genlab.load(tmp_path / "a").state_dict().items():
        assert torch.equal(v, genlab.load(tmp_path / "b").state_dict()[k]), k
    code, _, err = run(capsys, "train", "gmm", "--config", cfg, "--n", 200, "--set", "n_components=3",
                       "--out", tmp_path / "c")  # flags win over the file
    assert code == 0, err
    c = json.loads((tmp_path / "c" / "config.json").read_text())
    assert c["data"]["n"] == 200 and c["config"]["n_components"] == 3
    cfg.write_text(json.dumps({"family": "gmm", "epochs": 3}))
    code, _, err = run(capsys, "train", "--config", cfg, "--out", tmp_path / "d")
    assert code == 2 and "unknown key" in err and "epochs" in err


# -- 10. progress off a terminal, ETA from the budget ---------------------------------------------------
def test_progress_prints_lines_off_a_terminal_with_an_eta_from_the_budget():
    from genlab.train.progress import Progress

    now = [0.0]
    buf = io.StringIO()
    p = Progress(total=1000, desc="flow", budget_s=60, file=buf, every=10, timer=lambda: now[0])
    for _ in range(40):  # 1 step/s: the steps would take 1,000 s, the budget stops at 60
        now[0] += 1
        p.update(1)
    p.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 4  # one per 10 s
    assert lines[-1].startswith("flow: step 40/60") and "ETA 0:20 (budget)" in lines[-1]
    assert p.projected_total() == 60
    now[0], buf = 0.0, io.StringIO()
    p = Progress(total=100, desc="flow", file=buf, every=10, timer=lambda: now[0])
    for _ in range(20):
        now[0] += 1
        p.update(1)
    p.close()
    assert "step 20/100 (20%)" in buf.getvalue() and "ETA 1:20" in buf.getvalue() and "budget" not in buf.getvalue()


def test_heartbeat_reports_a_command_and_stays_quiet_under_a_progress_display():
    import time

    from genlab.train.progress import Heartbeat, Progress

    buf = io.StringIO()
    with Heartbeat("genlab eval", budget_s=600, file=buf, every=0.02) as beat:
        beat.status("nll")
        time.sleep(0.15)
    assert "genlab eval: nll," in buf.getvalue() and "(budget)" in buf.getvalue()
    buf = io.StringIO()
    with Progress(total=10, file=io.StringIO(), every=100), Heartbeat("quiet", file=buf, every=0.02):
        time.sleep(0.1)
    assert buf.getvalue() == ""


def test_train_prints_progress_lines_when_stderr_is_not_a_terminal(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_PROGRESS_EVERY", "0.01")
    code, _, err = run(capsys, "train", "gmm", "--data", "moons", "--n", 300, "--epochs", 3, "--max-minutes", 5,
                       "--out", tmp_path / "g")
    assert code == 0, err
    assert "genlab train gmm:" in err and "(budget)" in err


# -- 11. help, --version and metrics start without torch ------------------------------------------------
@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["metrics"]])
def test_light_commands_do_not_import_torch(argv):
    code = (f"import sys; from genlab.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr


def test_list_is_kept_and_printed_without_torch_until_genlab_changes(capsys, tmp_path, monkeypatch):
    from genlab.cli.listing import CACHE_ENV, source_key
    from genlab.evaluate import CACHE_ENV as EVAL_CACHE_ENV

    assert CACHE_ENV == EVAL_CACHE_ENV  # one cache folder
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    code, first, _ = run(capsys, "list")
    assert code == 0 and "realnvp" in first and list((tmp_path / "cache").glob("list-*.txt"))
    code = ("import sys; from genlab.cli import main\nmain(['list'])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    env = {**os.environ, "PYTHONPATH": str(ROOT), CACHE_ENV: str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == first
    (tmp_path / "pkg").mkdir()  # the key follows every file of the package
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    k1 = source_key(tmp_path / "pkg")
    (tmp_path / "pkg" / "a.py").write_text("x = 22\n")
    assert source_key(tmp_path / "pkg") != k1
