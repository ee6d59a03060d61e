"""Train a family on a named data set into a run directory, and resume it.

This is what ``genlab train`` and ``genlab resume`` call: load the data, split it with a seed,
build the model with a seeded initialisation, hand both to the one `Trainer`, and leave a
complete run directory (see `genlab.io`) with ``samples.png`` and ``loss.png``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from . import io
from .data import Splits, load_dataset, split
from .protocol import GenerativeModel
from .registry import get_family, make_config
from .report import loss_curves, save_samples
from .train import TrainConfig, Trainer


def build_model(family: str, spec, config: dict[str, Any], seed: int) -> GenerativeModel:
    """Construct a family with weights initialised from ``seed`` (global RNG left untouched)."""
    cls = get_family(family)
    cfg = make_config(cls, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(spec, cfg)


def load_splits(data: dict[str, Any]) -> Splits:
    """The train/val/test splits described by a run's ``data`` entry."""
    ds = load_dataset(data["name"], seed=data.get("seed", 0), n=data.get("n"))
    return split(ds, seed=data.get("split_seed", 0), val=data.get("val", 0.1), test=data.get("test", 0.1))


def train_run(family: str, data: str, out: str | Path, *, config: dict[str, Any] | None = None,
              train: TrainConfig | None = None, n: int | None = None, split_seed: int = 0,
              callbacks: list | None = None) -> tuple[GenerativeModel, Splits]:
    """Train ``family`` on the data set (or file) ``data``; write everything to ``out``.

    Returns the trained model (best validation weights) and the data splits.
    """
    train = train or TrainConfig()
    info = {"name": data, "seed": train.seed, "split_seed": split_seed, "val": 0.1, "test": 0.1, "n": n}
    splits = load_splits(info)
    model = build_model(family, splits.train.spec, config or {}, train.seed)
    out = Path(out)
    trainer = Trainer(model, train, out=out, run_info={"data": info}, callbacks=callbacks)
    trainer.fit(splits.train.x, splits.train.y, splits.val.x, splits.val.y)
    finish_run(model, out, splits, trainer)
    return model, splits


def resume_run(run_dir: str | Path, *, epochs: int | None = None, callbacks: list | None = None,
               max_minutes: float | None = None) -> tuple[GenerativeModel, Splits]:
    """Continue a run from its last checkpoint (optionally with more epochs or a new budget)."""
    run_dir = Path(run_dir)
    cfg = io.read_json(run_dir / "config.json")
    state = io.read_json(run_dir / "trainer.json")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    train = TrainConfig(**{k: v for k, v in state["config"].items() if k in fields})
    if epochs is not None:
        train.epochs = epochs
    if max_minutes is not None:
        train.max_minutes = max_minutes
    splits = load_splits(cfg["data"])
    model = build_model(cfg["family"], splits.train.spec, cfg["config"], train.seed)
    trainer = Trainer(model, train, out=run_dir, run_info={"data": cfg["data"]}, callbacks=callbacks)
    trainer.fit(splits.train.x, splits.train.y, splits.val.x, splits.val.y, resume=True)
    finish_run(model, run_dir, splits, trainer)
    return model, splits


def finish_run(model: GenerativeModel, out: Path, splits: Splits, trainer: Trainer) -> None:
    """Write the pictures of a finished run and record why training stopped."""
    if trainer.rank != 0:
        return
    cfg = io.read_json(out / "config.json")
    cfg["stopped"] = {"reason": trainer.stop_reason, "step": trainer.step, "epoch": trainer.epoch,
                      "best_val_loss": trainer.best_val}
    io.write_json(out / "config.json", cfg)
    n = 64 if model.spec.is_image else 2000
    g = torch.Generator(device=trainer.device).manual_seed(trainer.config.seed)
    samples = model.sample(n, generator=g)
    ref = splits.test.x[:2000] if not model.spec.is_image else None
    save_samples(samples, model.spec, out / "samples.png", title=f"{model.name} samples", reference=ref)
    if (out / "metrics.jsonl").exists():
        loss_curves(out / "metrics.jsonl", out / "loss.png")
