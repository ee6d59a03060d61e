"""The one trainer: exact resume, NaN handling, checkpoints, metrics, corrupted files (DDP: test_torchrun.py)."""
from __future__ import annotations

import json

import pytest
import torch

import genlab
from genlab import io
from genlab.io import CorruptFile
from genlab.train import TrainingDiverged

from conftest import FAMILY_CONFIGS, fit_tiny, tiny_model


class Stop(Exception):
    pass


def stop_at(step):
    def cb(trainer, record):
        if record["step"] == step:
            raise Stop
    return cb


# vae (Monte-Carlo noise) and gan (two optimizers) resume bit-exactly in test_conformance.py too: -m slow here
@pytest.mark.parametrize("family,extra", [("realnvp", {"ema": 0.9}), pytest.param("vae", {}, marks=pytest.mark.slow),
                                          pytest.param("gan", {}, marks=pytest.mark.slow)])
def test_resume_continues_exactly(family, extra, digits, tmp_path):
    kw = dict(epochs=3, checkpoint_every=4, lr_schedule="cosine", **extra)
    full, _ = fit_tiny(family, digits, out=tmp_path / "full", **kw)
    with pytest.raises(Stop):  # a crash at step 7: the last checkpoint is the epoch's end, step 6
        fit_tiny(family, digits, out=tmp_path / "cut", callbacks=[stop_at(7)], **kw)
    assert json.loads((tmp_path / "cut" / "trainer.json").read_text())["step"] == 6
    model = tiny_model(family, digits.spec)
    n_val = max(2, len(digits) // 8)
    from genlab.train import TrainConfig, Trainer
    tr = Trainer(model, TrainConfig(seed=0, batch_size=64, progress=False, device="cpu", **kw), out=tmp_path / "cut")
    resumed = tr.fit(digits.x[n_val:], digits.y[n_val:], digits.x[:n_val], resume=True)
    for (k, v), (_, w) in zip(full.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)
    # metrics.jsonl holds each step once
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
             if "val_loss" not in ln]
    assert steps == sorted(set(steps))


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(digits, tmp_path):
    def poison(trainer, record):
        if record["step"] == 4:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"step 5 .*'nll' loss is nan.*last good checkpoint \(step 3\)"):
        fit_tiny("realnvp", digits, out=tmp_path, epochs=5, checkpoint_every=3, callbacks=[poison])
    state = json.loads((tmp_path / "trainer.json").read_text())
    assert state["step"] == 3
    ckpt = io.load_tensors(tmp_path / "checkpoint.safetensors", state["checkpoint_sha256"])
    assert all(torch.isfinite(v).all() for v in ckpt.values() if v.is_floating_point())


def test_run_directory_and_metrics(digits, tmp_path):
    fit_tiny("realnvp", digits, out=tmp_path, epochs=2)
    for name in ("config.json", "model.safetensors", "checkpoint.safetensors", "trainer.json", "metrics.jsonl"):
        assert (tmp_path / name).is_file(), name
    assert not list(tmp_path.glob(".*.tmp")), "atomic writes leave no temporary files"
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("loss/nll" in r and r["examples_per_s"] > 0 for r in rows)
    assert sum("val_loss" in r for r in rows) == 2
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["family"] == "realnvp" and cfg["spec"]["levels"] == 17 and "torch" in cfg["versions"]


def test_early_stopping_keeps_the_best_validation_model(moons, tmp_path):
    model, tr = fit_tiny("realnvp", moons, out=tmp_path, epochs=30, patience=2, lr=3e-2)
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in rows if "val_loss" in r]
    assert tr.best_val == min(vals)
    if len(vals) < 30:
        assert "early stopping" in tr.stop_reason
    n_val = max(2, len(moons) // 8)
    with torch.no_grad():
        assert float(-model.log_prob(moons.x[:n_val]).mean()) == pytest.approx(min(vals), rel=1e-5)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage_json", "missing"])
def test_damaged_run_files_give_clear_errors(damage, moons, tmp_path):
    fit_tiny("gaussian", moons, out=tmp_path, epochs=1)
    f = tmp_path / "model.safetensors"
    data = f.read_bytes()
    if damage == "truncate":
        f.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        f.write_bytes(data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:])
    elif damage == "empty":
        f.write_bytes(b"")
    elif damage == "garbage_json":
        (tmp_path / "config.json").write_text("{'__import__': os.system('echo pwned')")
    else:
        f.unlink()
    err = FileNotFoundError if damage == "missing" else CorruptFile
    with pytest.raises(err, match="restore|train again|does not exist|corrupted"):
        genlab.load(tmp_path)


def test_tampered_checkpoint_refuses_to_resume(digits, tmp_path):
    fit_tiny("realnvp", digits, out=tmp_path, epochs=1)
    f = tmp_path / "checkpoint.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    from genlab.train import TrainConfig, Trainer
    tr = Trainer(tiny_model("realnvp", digits.spec), TrainConfig(epochs=2, progress=False, device="cpu"), out=tmp_path)
    with pytest.raises(CorruptFile, match="checksum"):
        tr.fit(digits.x, resume=True)


# -- one configuration channel: family defaults, given settings, one seeded constructor --------------
def _families_with_train_preferences() -> list[str]:
    return [f for f in genlab.families() if genlab.get_family(f).default_train]


def test_the_trainer_applies_each_family_defaults_and_a_given_setting_wins(moons):
    from genlab.train import TrainConfig, Trainer
    names = _families_with_train_preferences()
    assert names, "some family states trainer preferences"
    for name in names:
        cls = genlab.get_family(name)
        resolved = TrainConfig().for_family(cls)
        assert {k: getattr(resolved, k) for k in cls.default_train} == cls.default_train, name
        assert resolved.epochs == cls.default_epochs and resolved.for_family(cls) == resolved
        # given explicitly, even at the general default's value, a setting beats the family's preference
        general = {k: getattr(TrainConfig(), k) for k in cls.default_train}
        assert {k: getattr(TrainConfig(**general).for_family(cls), k) for k in general} == general, name
    fam = next(f for f in names if f in FAMILY_CONFIGS)
    cls = genlab.get_family(fam)
    key = sorted(cls.default_train)[0]
    tr = Trainer(tiny_model(fam, moons.spec), TrainConfig(device="cpu", progress=False, epochs=1))
    assert getattr(tr.config, key) == cls.default_train[key]
    assert tr.config.epochs == 1


def test_train_config_tracks_the_settings_given():
    from genlab.train import TrainConfig
    c = TrainConfig(lr=1e-3)
    c.epochs = 4
    assert c.given == {"lr", "epochs"}
    d = c.with_(seed=3)
    assert d.given == {"lr", "epochs", "seed"} and (d.epochs, d.seed, d.lr) == (4, 3, 1e-3)
    assert TrainConfig(5).given == {"epochs"}  # positional arguments count too


def test_make_gives_the_same_weights_for_the_same_seed_and_leaves_the_global_rng():
    spec = genlab.DataSpec((2,))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = genlab.make("realnvp", spec, seed=5, **FAMILY_CONFIGS["realnvp"])
    assert torch.equal(torch.rand(3), expected)
    b = genlab.make("realnvp", spec, seed=5, **FAMILY_CONFIGS["realnvp"])
    c = genlab.make("realnvp", spec, seed=6, **FAMILY_CONFIGS["realnvp"])
    assert all(torch.equal(v, w) for v, w in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(v, w) for v, w in zip(a.state_dict().values(), c.state_dict().values()))


def test_every_choice_setting_is_checked_in_one_place_naming_setting_value_and_choices():
    from genlab import settings
    from genlab.registry import make_config
    checked = 0
    for name in genlab.families():
        cls = genlab.get_family(name)
        settings.validate(cls.Config(), name)  # every default is one of its choices
        for field, hint in settings.field_types(cls.Config).items():
            choices, _ = settings.choices_of(hint)
            if choices is None:
                continue
            listed = ", ".join(repr(c) for c in choices)
            for bad in ("bogus", 7):  # from the command line (a string) or from Python
                with pytest.raises(ValueError, match=rf"{name}\.{field} must be one of {listed}; got {bad!r}"):
                    make_config(cls, {field: bad})
            checked += 1
    assert checked >= 20
    realnvp = genlab.get_family("realnvp")
    with pytest.raises(ValueError, match=r"realnvp\.net must be one of 'auto', 'mlp', 'conv'; got 'transformer'"):
        realnvp(genlab.DataSpec((2,)), realnvp.Config(net="transformer"))  # built without the registry


def test_renamed_settings_keep_saved_runs_loading():
    from genlab import settings
    from genlab.evaluate import EvalSettings
    from genlab.registry import make_config
    renamed = 0
    for name in genlab.families():
        cls = genlab.get_family(name)
        for old, new in settings.renamed_keys(cls.Config).items():
            value = getattr(cls.Config(), new)
            assert getattr(make_config(cls, {old: value}), new) == value
            with pytest.raises(ValueError, match="both"):
                make_config(cls, {old: value, new: value})
            renamed += 1
    assert renamed
    ev = settings.build(EvalSettings, {"n": 10, "k_pr": 4, "k_dc": 6, "n_ref": 50})
    assert (ev.max_examples, ev.precision_recall_k, ev.density_coverage_k, ev.max_reference) == (10, 4, 6, 50)
    # a config.json from before the rename: its "seed" is the family's setting, not make's seed
    gmm = genlab.get_family("gmm")
    old, new = next(iter(settings.renamed_keys(gmm.Config).items()))
    cfg = {"format": io.FORMAT, "family": "gmm", "spec": genlab.DataSpec((2,)).to_dict(),
           "config": {old: 3, "n_components": 2}}
    assert getattr(io.build(cfg).config, new) == 3


def test_stop_reasons_decide_resuming_and_old_files_are_read():
    from genlab.train import StopReason
    assert StopReason.from_saved({"stop": "time budget", "stop_reason": "anything"}) is StopReason.TIME_BUDGET
    old = {"30 epochs": StopReason.EPOCHS, "time budget": StopReason.TIME_BUDGET, "converged": StopReason.CONVERGED,
           "interrupted": StopReason.INTERRUPTED, "early stopping (10 epochs without gain)": StopReason.EARLY_STOPPING}
    for text, reason in old.items():
        assert StopReason.from_saved({"stop_reason": text}) is reason
    assert StopReason.from_saved({"stop_reason": ""}) is None
    assert {r for r in StopReason if r.resumable} == {StopReason.TIME_BUDGET, StopReason.INTERRUPTED, StopReason.EPOCHS}


def test_a_run_cut_by_its_time_budget_resumes_to_the_end(moons, tmp_path):
    from genlab.train import StopReason, TrainConfig, Trainer
    _, cut = fit_tiny("realnvp", moons, out=tmp_path, epochs=3, max_minutes=0.0)
    assert cut.stopped is StopReason.TIME_BUDGET and cut.stop_reason == "time budget" and cut.epoch == 0
    assert json.loads((tmp_path / "trainer.json").read_text())["stop"] == "time budget"
    n_val = max(2, len(moons) // 8)
    tr = Trainer(tiny_model("realnvp", moons.spec), TrainConfig(epochs=3, batch_size=64, progress=False, device="cpu"),
                 out=tmp_path)
    tr.fit(moons.x[n_val:], None, moons.x[:n_val], resume=True)
    assert tr.epoch == 3 and tr.stopped is StopReason.EPOCHS and tr.stop_reason == "3 epochs"
