"""Train a family on a named data set into a run directory, and resume it.

This is what ``genlab train`` and ``genlab resume`` call: load the data, split it with a seed,
build the model with a seeded initialisation, hand both to the one `Trainer`, and leave a
complete run directory (see `genlab.io`). No figures: the caller that wants ``samples.png`` and
``loss.png`` (the command line, `genlab.compare`) draws them with `genlab.report`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import io, settings
from .data import Splits, load_dataset, split
from .protocol import GenerativeModel
from .registry import make
from .train import TrainConfig, Trainer


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
    model = make(family, splits.train.spec, seed=train.seed, **(config or {}))
    out = Path(out)
    trainer = Trainer(model, train, out=out, run_info={"data": info}, callbacks=callbacks)
    trainer.fit(splits.train.x, splits.train.y, splits.val.x, splits.val.y)
    _record_stop(out, trainer)
    return model, splits


def resume_run(run_dir: str | Path, *, epochs: int | None = None, callbacks: list | None = None,
               max_minutes: float | None = None) -> tuple[GenerativeModel, Splits]:
    """Continue a run from its last checkpoint (optionally with more epochs or a new budget).

    Returns the trained model (best validation weights) and the data splits.
    """
    run_dir = Path(run_dir)
    cfg = io.read_json(run_dir / "config.json")
    train = saved_train_config(run_dir)
    if epochs is not None:
        train.epochs = epochs
    if max_minutes is not None:
        train.max_minutes = max_minutes
    splits = load_splits(cfg["data"])
    model = io.build(cfg, seed=train.seed)
    trainer = Trainer(model, train, out=run_dir, run_info={"data": cfg["data"]}, callbacks=callbacks)
    trainer.fit(splits.train.x, splits.train.y, splits.val.x, splits.val.y, resume=True)
    _record_stop(run_dir, trainer)
    return model, splits


def saved_train_config(run_dir: str | Path) -> TrainConfig:
    """The trainer settings a run was trained with (from its ``trainer.json``). Renamed settings
    are read under their new names (`genlab.settings`); keys `TrainConfig` no longer knows are
    ignored, so that runs saved by an older version still resume."""
    state = io.read_json(Path(run_dir) / "trainer.json")
    known = set(settings.field_types(TrainConfig)) | set(settings.renamed_keys(TrainConfig)) \
        | set(settings.retired_keys(TrainConfig))
    return settings.build(TrainConfig, {k: v for k, v in state["config"].items() if k in known},
                          where=f"{run_dir}/trainer.json")


def _record_stop(out: Path, trainer: Trainer) -> None:
    """Record in config.json why and when training stopped (on the first process only)."""
    if trainer.rank != 0:
        return
    cfg = io.read_json(out / "config.json")
    cfg["stopped"] = {"reason": trainer.stop_reason, "step": trainer.step, "epoch": trainer.epoch,
                      "best_val_loss": trainer.best_val}
    io.write_json(out / "config.json", cfg)
