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


# -- the parser is generated from the settings dataclasses ----------------------------------------
def _train_parser_args(*argv):
    from genlab.cli import build_parser
    return build_parser().parse_args(["train", "gaussian", *map(str, argv)])


def test_every_trainer_setting_has_a_flag_with_its_choices(capsys):
    import dataclasses

    from genlab import settings
    from genlab.train import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "gaussian", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for f in dataclasses.fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in out, f.name
        choices, _ = settings.choices_of(settings.field_types(TrainConfig)[f.name])
        if choices:
            assert "{" + ",".join(map(str, choices)) + "}" in out, f.name


def test_trainer_flags_parse_by_type_and_only_given_ones_are_set(capsys):
    from genlab.cli.flags import dataclass_values
    from genlab.train import TrainConfig

    args = _train_parser_args("--grad-clip", "none", "--epochs", 3, "--lr", "0.5", "--no-progress", "--threads", 2)
    given = dataclass_values(args, TrainConfig)
    assert given == {"grad_clip": None, "epochs": 3, "lr": 0.5, "progress": False, "threads": 2}
    cfg = TrainConfig(**given)
    assert cfg.given == set(given) and cfg.grad_clip is None and isinstance(cfg.threads, int)
    with pytest.raises(SystemExit) as e:
        _train_parser_args("--amp", "bf17")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "bf17" in err and "'bf16'" in err  # the choices, from the Literal type
    with pytest.raises(SystemExit):
        _train_parser_args("--epochs", "three")
    assert "expected int" in capsys.readouterr().err


def test_renamed_evaluation_settings_keep_their_old_flags():
    import argparse

    from genlab import settings
    from genlab.cli.evaluate import add_commands, eval_settings
    from genlab.evaluate import EvalSettings

    renamed = settings.renamed_keys(EvalSettings)
    if not renamed:
        pytest.skip("no evaluation setting has been renamed")
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    for old, new in renamed.items():
        flag = "--" + ("eval-" if old == "n" else "") + old.replace("_", "-")
        typ = type(getattr(EvalSettings(), new))
        value = "7" if typ is int else "0.5"
        s_old = eval_settings(parser.parse_args(["eval", "run", flag, value]))
        s_new = eval_settings(parser.parse_args(["eval", "run", "--" + new.replace("_", "-"), value]))
        assert getattr(s_old, new) == getattr(s_new, new) == typ(value)


def test_compare_default_set_is_one_family_per_row_of_the_table_plus_baselines():
    from genlab import make
    from genlab.compare import default_families
    from genlab.data import load_dataset
    from genlab.protocol import Translator
    from genlab.taxonomy import BASELINE, ROWS

    digits = load_dataset("digits", n=64).spec
    chosen = default_families(digits)
    rows = [genlab.get_family(f).taxonomy for f in chosen]
    assert rows == sorted(rows, key=ROWS.index)  # in the table's order
    assert set(rows) == set(ROWS) and all(rows.count(r) == 1 for r in ROWS if r != BASELINE)
    for fam in genlab.families():  # the set is what the classes themselves declare
        declared = vars(genlab.get_family(fam)).get("in_default_compare", False)
        assert (fam in chosen) == declared, fam
    assert "iwae" not in chosen  # vae's flag is not inherited
    for fam in chosen:  # every row's family models the main job's data
        assert make(fam, digits).spec == digits
    moons = load_dataset("moons", n=64).spec
    assert default_families(moons) == chosen  # a row whose family cannot model the data still has its row
    every = default_families(moons, "all")
    for fam in genlab.families():
        cls = genlab.get_family(fam)
        assert (fam in every) == (moons.kind in cls.data_kinds and not issubclass(cls, Translator)), fam
    with pytest.raises(ValueError, match="rows"):
        default_families(moons, "some")


def test_a_run_without_the_cli_has_no_figures_and_the_cli_draws_them(capsys, tmp_path):
    from genlab.runs import train_run
    from genlab.train import TrainConfig

    train_run("gaussian", "moons", tmp_path / "lib", train=TrainConfig(progress=False), n=200)
    assert not (tmp_path / "lib" / "samples.png").exists()  # runs.py sits below report/
    code, _, err = run(capsys, "train", "vae", "--data", "moons", "--n", 256, "--epochs", 1, "--set", "hidden=8",
                       "--out", tmp_path / "cli", "--no-progress")
    assert code == 0, err
    for png in ("samples.png", "loss.png"):
        assert (tmp_path / "cli" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_print_eval_shows_each_metric_with_its_floor_and_what_is_missing(capsys):
    from genlab.report import print_eval

    result = {"family": "f", "data": "d", "density": "exact", "parameters": 1234,
              "metrics": {"nll_is": "upper bound", "bits_per_dim": {"value": 2.5, "stderr": 0.01, "n": 10},
                          "precision": {"value": 0.7, "stderr": None, "n": 5}},
              "floor": {"precision": {"value": 0.9, "stderr": 0.02, "n": 5}},
              "not_computed": {"classifier_fid": "too few examples"}}
    print_eval(result)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "f on d (density exact, 1,234 parameters)"
    assert lines[1] == "  bits_per_dim: 2.5 ± 0.01 bits/dim (n=10)"
    assert lines[2] == "  precision: 0.7 ± nan (n=5)   [held-out data: 0.9 ± 0.02]"
    assert lines[3] == "  not computed: classifier_fid: too few examples"
