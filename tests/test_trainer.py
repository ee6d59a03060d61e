"""The one trainer: exact resume, NaN handling, checkpoints, metrics, corrupted files, DDP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import genlab
from genlab import io
from genlab.io import CorruptFile
from genlab.train import TrainingDiverged

from conftest import fit_tiny, tiny_model

ROOT = Path(__file__).resolve().parents[1]


class Stop(Exception):
    pass


def stop_at(step):
    def cb(trainer, record):
        if record["step"] == step:
            raise Stop
    return cb


@pytest.mark.parametrize("family,extra", [("realnvp", {"ema": 0.9}), ("vae", {}), ("gan", {})])
def test_resume_continues_exactly(family, extra, digits, tmp_path):
    kw = dict(epochs=3, checkpoint_every=4, lr_schedule="cosine", **extra)
    full, _ = fit_tiny(family, digits, out=tmp_path / "full", **kw)
    with pytest.raises(Stop):  # a crash at step 7: the last checkpoint is at step 4
        fit_tiny(family, digits, out=tmp_path / "cut", callbacks=[stop_at(7)], **kw)
    assert json.loads((tmp_path / "cut" / "trainer.json").read_text())["step"] == 4
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


def test_two_processes_with_gloo_stay_in_sync(tmp_path):
    env = {**os.environ, "GENLAB_BACKEND": "gloo", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "ddp.json").read_text())
    assert result["world"] == 2
    assert result["max_param_diff"] == 0.0          # every rank holds the same weights
    assert result["initial_diff"] > 0.0             # ... although they were built differently
    assert result["ranks_saw_different_data"]
    assert result["final_nll"] < result["first_nll"]
    assert (tmp_path / "run" / "model.safetensors").exists()
