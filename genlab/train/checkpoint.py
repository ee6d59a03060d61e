"""The trainer's files: the checkpoint (``checkpoint.safetensors`` + ``trainer.json``), the saved
model and ``metrics.jsonl``.

A checkpoint holds the model, every optimizer, the noise generator, the EMA and the loss scaler,
with tensors in safetensors and the rest as JSON (`state.split_state`), so a resumed run goes on
exactly where it stopped. Only the first process writes.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor

from .. import io
from .state import join_state, split_state
from .stop import StopReason

# Functions here take the `Trainer` (typed Any: trainer.py imports this module, not the reverse)

_COUNTERS = ("step", "epoch", "batch_in_epoch", "best_val", "bad_epochs", "finished")


def log(trainer: Any, record: dict[str, Any]) -> None:
    """Append ``record`` to ``metrics.jsonl``."""
    if trainer.out is None or trainer.rank != 0:
        return
    trainer.out.mkdir(parents=True, exist_ok=True)
    with open(trainer.out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_metrics(trainer: Any, step: int) -> None:
    """Drop the records after ``step`` (a resumed run writes them again)."""
    path = trainer.out / "metrics.jsonl" if trainer.out else None
    if path is None or trainer.rank != 0 or not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
    io.atomic_write(path, ("\n".join(keep) + "\n" if keep else "").encode())


def save_model(trainer: Any) -> None:
    """Save the model (its EMA weights when kept) with `genlab.io.save`."""
    if trainer.out is None or trainer.rank != 0:
        return
    trainer.check_finite_weights()
    with trainer.ema_weights():
        io.save(trainer.model, trainer.out, trainer=asdict(trainer.config), **trainer.run_info)


def save(trainer: Any) -> None:
    """Write the checkpoint; the JSON records the SHA-256 of the tensors it belongs to."""
    if trainer.out is None or trainer.rank != 0:
        return
    trainer.check_finite_weights()
    tensors: dict[str, Tensor] = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
    skeleton = {
        "optimizers": [split_state(o.state_dict(), f"opt{i}", tensors) if o else None
                       for i, o in enumerate(trainer.optimizers)],
        "generator": split_state(trainer.generator.get_state(), "rng", tensors),
        "ema": split_state(trainer.ema.state, "ema", tensors) if trainer.ema is not None else None,
        "scaler": trainer.scaler.state_dict() if trainer.scaler else None,  # a few floats: JSON
    }
    digest = io.save_tensors(trainer.out / "checkpoint.safetensors", tensors)
    if not (trainer.out / "config.json").exists():
        save_model(trainer)
    state = {k: getattr(trainer, k) for k in _COUNTERS}
    state.update(stop=trainer.stopped.value if trainer.stopped else None, stop_reason=trainer.stop_reason,
                 config=asdict(trainer.config), state=skeleton, checkpoint_sha256=digest)
    io.write_json(trainer.out / "trainer.json", state)
    trainer.last_checkpoint_step = trainer.step


def load(trainer: Any) -> None:
    """Restore the trainer from its checkpoint; a resumable stop (`StopReason.resumable`) is
    cleared so that training goes on."""
    if trainer.out is None:
        raise ValueError("resume needs the run directory (out=)")
    state = io.read_json(trainer.out / "trainer.json")
    where = trainer.out / "checkpoint.safetensors"
    tensors = io.load_tensors(where, state.get("checkpoint_sha256"))
    try:
        model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        io.load_state(trainer.model, model_state, str(where))
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
            setattr(trainer, k, state[k])
        trainer.stopped, trainer.stop_reason = StopReason.from_saved(state), state.get("stop_reason") or ""
    except (KeyError, TypeError, ValueError) as e:
        raise io.CorruptFile(f"{trainer.out}/trainer.json does not match checkpoint.safetensors ({e})") from None
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
