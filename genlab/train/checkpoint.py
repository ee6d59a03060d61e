"""The trainer's files: the checkpoint (``checkpoint.safetensors`` + ``trainer.json``), the saved
model and ``metrics.jsonl``. Checkpoint and model are committed through `genlab.rundir`.

A checkpoint holds the model, every optimizer, the noise generator, the EMA and the loss scaler,
with tensors in safetensors and the rest as JSON (`state.split_state`), so a resumed run goes on
exactly where it stopped. Only the first process writes.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor

from .. import io, rundir
from . import tblog
from .state import join_state, split_state
from .stop import StopReason

# Functions here take the `Trainer` (typed Any: trainer.py imports this module, not the reverse)

_COUNTERS = ("step", "epoch", "batch_in_epoch", "best_val", "bad_epochs", "finished", "model_from_stop")
_ADDED = {"model_from_stop": False}  # counters that checkpoints written by older versions lack


def log(trainer: Any, record: dict[str, Any]) -> None:
    """Append ``record`` to ``metrics.jsonl``."""
    if trainer.out is None or trainer.rank != 0:
        return
    trainer.out.mkdir(parents=True, exist_ok=True)
    with open(trainer.out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    tblog.add(trainer, record)


def truncate_metrics(trainer: Any, step: int) -> None:
    """Drop the records a resumed run writes again: steps after ``step``, and validations of
    epochs the checkpoint (at ``trainer.epoch`` epochs done) had not finished."""
    path = trainer.out / "metrics.jsonl" if trainer.out else None
    if path is None or trainer.rank != 0 or not path.exists():
        return

    def kept(r: dict[str, Any]) -> bool:
        return r.get("step", 0) <= step and not ("val_loss" in r and "stop" not in r
                                                  and r.get("epoch", 0) > trainer.epoch)
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    keep = []
    for ln in lines:
        try:
            if kept(json.loads(ln)):
                keep.append(ln)
        except json.JSONDecodeError:  # a line cut by a kill: the records after it are rewritten
            break
    io.atomic_write(path, ("\n".join(keep) + "\n" if keep else "").encode())


def _model_files(trainer: Any, ema: bool = True) -> dict[str, bytes]:
    """config.json + model.safetensors of the model (its EMA weights when kept and ``ema``)."""
    trainer.check_finite_weights()
    old = io.read_config(trainer.out) if (trainer.out / "config.json").is_file() else {}
    with trainer.ema_weights() if ema else contextlib.nullcontext():
        return io.model_files(trainer.model, old, trainer=asdict(trainer.config), **trainer.run_info)


def save_model(trainer: Any, ema: bool = True) -> None:
    """Commit the model (its EMA weights when kept and ``ema``) and config.json, without a checkpoint."""
    if trainer.out is None or trainer.rank != 0:
        return
    trainer.generation = rundir.commit(trainer.out, _model_files(trainer, ema))


def save(trainer: Any, with_model: bool = False) -> None:
    """Commit a checkpoint (and, ``with_model`` or on the first save, the model): one generation
    of the run directory, so a kill at any instant leaves either this one or the previous one.
    trainer.json records the SHA-256 of the tensors it belongs to (read by genlab before manifests)."""
    if trainer.out is None or trainer.rank != 0:
        return
    trainer.check_finite_weights()
    tensors: dict[str, Tensor] = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
    if trainer.best_state is not None:  # the best validated weights so far: a resumed run ends on them too
        tensors.update({f"best.{k}": v for k, v in trainer.best_state.items()})
    skeleton = {
        "optimizers": [split_state(o.state_dict(), f"opt{i}", tensors) if o else None
                       for i, o in enumerate(trainer.optimizers)],
        "generator": split_state(trainer.generator.get_state(), "rng", tensors),
        "ema": split_state(trainer.ema.state, "ema", tensors) if trainer.ema is not None else None,
        "scaler": trainer.scaler.state_dict() if trainer.scaler else None,  # a few floats: JSON
    }
    data = io.tensor_bytes(tensors)
    state = {k: getattr(trainer, k) for k in _COUNTERS}
    state.update(stop=trainer.stopped.value if trainer.stopped else None, stop_reason=trainer.stop_reason,
                 config=asdict(trainer.config), state=skeleton, checkpoint_sha256=hashlib.sha256(data).hexdigest())
    files = {"checkpoint.safetensors": data, "trainer.json": rundir.json_bytes(state)}
    tblog.flush(trainer)  # the event files hold every record up to this checkpoint (a resume purges after it)
    if with_model or not (trainer.out / "config.json").exists():
        files.update(_model_files(trainer))
    trainer.generation = rundir.commit(trainer.out, files)
    trainer.last_checkpoint_step = trainer.step


def load(trainer: Any) -> None:
    """Restore the trainer from the run's last committed checkpoint; a resumable stop
    (`StopReason.resumable`) is cleared so that training goes on."""
    if trainer.out is None:
        raise ValueError("resume needs the run directory (out=)")
    try:
        snap = rundir.read(trainer.out, ["trainer.json", "checkpoint.safetensors"])
    except FileNotFoundError:
        raise FileNotFoundError(f"{trainer.out} holds no checkpoint: the run stopped before its first save. "
                                "Train it again (delete the directory, or choose another --out)") from None
    state = rundir.parse_json(snap.files["trainer.json"], trainer.out / "trainer.json")
    where = trainer.out / "checkpoint.safetensors"
    try:
        # the manifest verified both files; a run from before manifests is checked by its own record
        tensors = io.parse_tensors(snap.files["checkpoint.safetensors"], where,
                                   state["checkpoint_sha256"] if snap.generation is None else None)
        model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        io.load_state(trainer.model, model_state, str(where))
        best = {k[len("best."):]: v.to(trainer.device) for k, v in tensors.items() if k.startswith("best.")}
        trainer.best_state = best or None
        sk = state["state"]
        for opt, s in zip(trainer.optimizers, sk["optimizers"]):
            if opt is not None:
                opt.load_state_dict(join_state(s, tensors))
        trainer.generator.set_state(join_state(sk["generator"], tensors))
        if trainer.ema is not None and sk["ema"] is not None:
            trainer.ema.load(join_state(sk["ema"], tensors), trainer.device)
        if trainer.scaler and sk.get("scaler"):
            trainer.scaler.load_state_dict(sk["scaler"])
        for k in _COUNTERS:
            setattr(trainer, k, state[k] if k in state or k not in _ADDED else _ADDED[k])
        trainer.stopped, trainer.stop_reason = StopReason.from_saved(state), state.get("stop_reason") or ""
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise io.CorruptFile(f"{trainer.out}/trainer.json does not match checkpoint.safetensors ({e})") from None
    trainer.generation = snap.generation
    trainer.model.to(trainer.device)
    trainer.last_checkpoint_step = trainer.step
    if trainer.stopped is not None and trainer.stopped.resumable:
        # the budget, an interruption or the epoch count cut the run: go on (the epoch check below
        # ends a run that already has all the epochs now asked for)
        trainer.finished, trainer.stopped, trainer.stop_reason = False, None, ""
    if trainer.epoch >= trainer.epochs:
        trainer.finished = True
        trainer.stopped = trainer.stopped or StopReason.EPOCHS
        trainer.stop_reason = trainer.stop_reason or f"{trainer.epochs} epochs"
    truncate_metrics(trainer, trainer.step)


def best_weights(trainer: Any) -> dict[str, torch.Tensor] | None:
    """The weights a finished fit hands back: the best validated ones (kept in memory, or saved in
    the run directory by an earlier fit), else the EMA, else None (keep the current weights)."""
    if trainer.best_state is not None:
        return trainer.best_state
    if trainer.out is not None and (trainer.out / "model.safetensors").exists():
        return io.load(trainer.out, map_location=trainer.device).state_dict()
    if trainer.ema is not None:
        return trainer.ema.state
    return None
