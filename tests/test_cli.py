"""The command line end to end on digits with tiny budgets."""
from __future__ import annotations

import json

import numpy as np
import pytest

import genlab
from genlab.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_shows_families_with_capabilities_and_datasets(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    for fam in genlab.families():
        assert fam in out
    assert "exact" in out and "bound" in out and "digits" in out and "moons" in out


def test_help_lists_a_familys_settings(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "vae", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for key in ("latent_dim", "beta", "kl_warmup_steps", "--epochs", "--set", "--data"):
        assert key in out


def test_train_sample_eval_resume_on_digits(capsys, tmp_path):
    out = tmp_path / "run"
    code, text, err = run(capsys, "train", "realnvp", "--data", "digits", "--epochs", 1, "--set", "n_layers=2",
                          "--set", "hidden=16", "--out", out, "--no-progress")
    assert code == 0, err
    assert (out / "samples.png").is_file() and (out / "model.safetensors").is_file()
    assert json.loads((out / "config.json").read_text())["config"]["n_layers"] == 2
    for suffix in ("png", "npy", "csv"):
        code, _, err = run(capsys, "sample", out, "-n", 16, "--out", tmp_path / f"s.{suffix}")
        assert code == 0, err
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (16, 1, 8, 8) and set(np.unique(x)) <= set(range(17))
    assert np.loadtxt(tmp_path / "s.csv", delimiter=",").shape == (16, 64)
    code, text, err = run(capsys, "eval", out)
    assert code == 0, err
    result = json.loads((out / "eval.json").read_text())
    assert result["n"] == 180 and 0 < result["bits_per_dim"]["value"] < 4.1
    assert "bits/dim" in text
    code, text, err = run(capsys, "resume", out, "--epochs", 2)
    assert code == 0, err
    assert json.loads((out / "trainer.json").read_text())["epoch"] == 2
    # an existing run is never overwritten
    code, _, err = run(capsys, "train", "gaussian", "--data", "digits", "--out", out)
    assert code == 2 and "already holds a run" in err


def test_gan_eval_says_why_nll_is_missing(capsys, tmp_path):
    out = tmp_path / "gan"
    code, _, err = run(capsys, "train", "gan", "--data", "moons", "--n", 512, "--epochs", 1, "--out", out,
                       "--no-progress")
    assert code == 0, err
    code, text, err = run(capsys, "eval", out)
    assert code == 0
    assert "density" in json.loads((out / "eval.json").read_text())["not_computed"]["nll"]


@pytest.mark.parametrize("argv,message", [
    (["train", "gaussian", "--data", "no-such-data"], "unknown data set"),
    (["train", "gaussian", "--data", "digits", "--set", "bogus=1"], "unknown setting"),
    (["train", "gmm", "--data", "digits", "--set", "n_components=three"], "expected int"),
    (["sample", "no/such/run", "--out", "x.png"], "does not exist"),
])
def test_bad_input_gives_a_clear_error(capsys, tmp_path, argv, message):
    code, _, err = run(capsys, *argv, *(["--out", tmp_path / "r"] if argv[0] == "train" else []))
    assert code == 2
    assert message in err.replace("\n  ", " ")


def test_unknown_family_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "nosuchfamily"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
