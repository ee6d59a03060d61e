"""TensorBoard logging (``TrainConfig.tensorboard``): RUN/tensorboard/ holds metrics.jsonl's records as
scalars, one point per step across interrupted and resumed fits, written by the first process only; a
missing package is refused before any training with the command that installs it."""
from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

import genlab
from genlab.train import TrainConfig, Trainer
from genlab.train.tblog import TensorBoardMissing

from conftest import tiny_model

# the tests that write event files need the package; the one that hides it runs without it too
needs_tensorboard = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                                       reason='needs the tensorboard package: pip install "genlab[tensorboard]"')


class Stop(Exception):
    pass


def _stop_at(step):
    def cb(trainer, record):
        if record["step"] == step:
            raise Stop  # a crash after the step's record is written, before its checkpoint
    return cb


def _fit(moons, out, *, resume=False, callbacks=None, **kw):
    kw = {"epochs": 3, "batch_size": 64, "log_every": 1, "checkpoint_every": 4, "tensorboard": True,
          "progress": False, "device": "cpu", **kw}
    n_val = len(moons) // 8
    tr = Trainer(tiny_model("realnvp", moons.spec, conditional=False), TrainConfig(**kw), out=out, callbacks=callbacks)
    tr.fit(moons.x[n_val:], x_val=moons.x[:n_val], resume=resume)
    return tr


def _events(run) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _expected(run) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl as series: each number of a record but its step and epoch, at its step (TensorBoard
    stores float32)."""
    series: dict[str, list[tuple[int, float]]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        for k, v in record.items():
            if k not in ("step", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool):
                series.setdefault(k, []).append((record["step"], float(np.float32(v))))
    return series


@needs_tensorboard
def test_the_event_files_hold_every_metrics_record_and_the_run_still_loads(moons, tmp_path):
    run = tmp_path / "run"
    tr = _fit(moons, run, epochs=2)
    got, want = _events(run), _expected(run)
    assert {"loss/nll", "val_loss", "best_val_loss", "examples_per_s"} <= set(want)
    assert got == want
    assert len(got["loss/nll"]) == tr.step and len(got["val_loss"]) == 2
    assert tr.tb is None, "the writer is closed when fit returns"
    # the folder is not part of the committed state: loading and the hand-edit checks ignore it
    model = genlab.load(run)
    torch.testing.assert_close(model.log_prob(moons.x[:5]), tr.model.log_prob(moons.x[:5]))


@needs_tensorboard
@pytest.mark.parametrize("cut,last", [("crash", 9), ("budget", 1)])
def test_a_resumed_run_has_one_point_per_step(cut, last, moons, tmp_path):
    run = tmp_path / "run"
    if cut == "crash":  # stopped after step 9's record; its last checkpoint is step 8
        with pytest.raises(Stop):
            _fit(moons, run, callbacks=[_stop_at(9)])
        assert json.loads((run / "trainer.json").read_text())["step"] == 8
    else:  # the budget runs out after the first step, inside the first epoch
        _fit(moons, run, max_minutes=0.0)
    assert [s for s, _ in _events(run)["loss/nll"]] == list(range(1, last + 1))
    tr = _fit(moons, run, resume=True)
    got = _events(run)
    assert got == _expected(run)
    assert [s for s, _ in got["loss/nll"]] == list(range(1, tr.step + 1))  # step 8 (and 9) once, the resumed ones


@needs_tensorboard
def test_a_run_trained_without_tensorboard_gets_its_whole_history_on_resume(moons, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Stop):  # its last checkpoint is step 8
        _fit(moons, run, callbacks=[_stop_at(9)], tensorboard=False)
    assert not (run / "tensorboard").exists()
    tr = _fit(moons, run, resume=True, epochs=2)
    got = _events(run)
    assert got == _expected(run) and [s for s, _ in got["loss/nll"]] == list(range(1, tr.step + 1))


def test_without_the_package_asking_for_it_fails_before_training(moons, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    fix = r'pip install "genlab\[tensorboard\]"'
    with pytest.raises(TensorBoardMissing, match=fix):
        _fit(moons, tmp_path / "run")
    assert not (tmp_path / "run").exists(), "nothing was trained or written"
    assert issubclass(TensorBoardMissing, ImportError)
    Trainer(tiny_model("realnvp", moons.spec), TrainConfig(device="cpu"), out=tmp_path / "off")  # off: no error
    from genlab.cli import main
    assert main(["train", "gaussian", "--data", "moons", "--n", "64", "--tensorboard", "--no-progress",
                 "--out", str(tmp_path / "cli")]) == 2
    assert 'pip install "genlab[tensorboard]"' in capsys.readouterr().err.replace("\n  ", " ")


@needs_tensorboard
def test_only_the_first_process_writes_and_a_trainer_without_a_run_directory_warns(moons, tmp_path):
    with pytest.warns(UserWarning, match="out=DIR"):
        Trainer(tiny_model("gaussian", moons.spec), TrainConfig(tensorboard=True, device="cpu"))
    tr = Trainer(tiny_model("gaussian", moons.spec), TrainConfig(tensorboard=True, progress=False, device="cpu",
                                                                 epochs=1), out=tmp_path / "run")
    tr.rank = 1  # what torchrun's second process sees: it writes no run files
    tr.fit(moons.x)
    assert not (tmp_path / "run" / "tensorboard").exists()
