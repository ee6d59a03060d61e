"""Train a family on a named data set into a run directory, and resume it.

This is what ``genlab train`` and ``genlab resume`` call: load the data, split it with a seed,
build the model with a seeded initialisation, hand both to the one `Trainer`, and leave a
complete run directory (see `genlab.io`). No figures: the caller that wants ``samples.png`` and
``loss.png`` (the command line, `genlab.compare`) draws them with `genlab.report`.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from . import io, rundir, settings
from .data import Splits, load_dataset, split
from .protocol import GenerativeModel
from .registry import make
from .train import TrainConfig, Trainer
from .train.distributed import barrier, world


def load_splits(data: dict[str, Any]) -> Splits:
    """The train/val/test splits described by a run's ``data`` entry."""
    ds = load_dataset(data["name"], seed=data.get("seed", 0), n=data.get("n"))
    return split(ds, seed=data.get("split_seed", 0), val=data.get("val", 0.1), test=data.get("test", 0.1))


def train_run(family: str, data: str, out: str | Path, *, config: dict[str, Any] | None = None,
              train: TrainConfig | None = None, n: int | None = None, split_seed: int = 0,
              callbacks: list | None = None, deadline: float | None = None) -> tuple[GenerativeModel, Splits]:
    """Train ``family`` on the data set (or file) ``data``; write everything to ``out``.

    Returns the trained model (best validation weights) and the data splits.
    """
    train = train or TrainConfig()
    info = {"name": data, "seed": train.seed, "split_seed": split_seed, "val": 0.1, "test": 0.1, "n": n}
    splits = load_splits(info)
    model = make(family, splits.train.spec, seed=train.seed, **(config or {}))
    out = Path(out)
    trainer = Trainer(model, train, out=out, run_info={"data": info}, callbacks=callbacks, deadline=deadline)
    # one writer from the first file to the stop record (under torchrun: rank 0)
    with rundir.lock(out) if trainer.rank == 0 else contextlib.nullcontext():
        try:
            trainer.fit(splits.train.x, splits.train.y, splits.val.x, splits.val.y)
        finally:
            _record_stop(out, trainer)
    return model, splits


def resume_run(run_dir: str | Path, *, epochs: int | None = None, callbacks: list | None = None,
               max_minutes: float | None = None, deadline: float | None = None) -> tuple[GenerativeModel, Splits]:
    """Continue a run from its last checkpoint (optionally with more epochs or a new budget).

    Returns the trained model (best validation weights) and the data splits.
    """
    run_dir = Path(run_dir)
    rank, size = world()
    with rundir.lock(run_dir) if rank == 0 else contextlib.nullcontext():  # under torchrun rank 0 writes
        if rank == 0:
            rundir.recover(run_dir)
        barrier(size)  # the others read the run once rank 0 has finished what a killed writer left
        cfg = io.read_config(run_dir)
        train = saved_train_config(run_dir)
        if epochs is not None:
            train.epochs = epochs
        if max_minutes is not None:
            train.max_minutes = max_minutes
        if "data" not in cfg:
            raise ValueError(f"{run_dir} was written by the Python API without a data entry: resume it "
                             "with genlab.Trainer(model, config, out=RUN).fit(x, ..., resume=True)")
        splits = load_splits(cfg["data"])
        model = io.build(cfg, seed=train.seed)
        trainer = Trainer(model, train, out=run_dir, run_info={"data": cfg["data"]}, callbacks=callbacks,
                          deadline=deadline)
        try:
            trainer.fit(splits.train.x, splits.train.y, splits.val.x, splits.val.y, resume=True)
        finally:
            _record_stop(run_dir, trainer)
    return model, splits


def saved_train_config(run_dir: str | Path) -> TrainConfig:
    """The trainer settings a run was trained with (from its ``trainer.json``). Renamed settings
    are read under their new names (`genlab.settings`); keys `TrainConfig` no longer knows are
    ignored, so that runs saved by an older version still resume."""
    snap = rundir.read(run_dir, ["trainer.json"])
    state = rundir.parse_json(snap.files["trainer.json"], Path(run_dir) / "trainer.json")
    known = set(settings.field_types(TrainConfig)) | set(settings.renamed_keys(TrainConfig)) \
        | set(settings.retired_keys(TrainConfig))
    return settings.build(TrainConfig, {k: v for k, v in state["config"].items() if k in known},
                          where=f"{run_dir}/trainer.json")


def _record_stop(out: Path, trainer: Trainer) -> None:
    """Record in config.json why and when training stopped (on the first process only; nothing
    when the run died before its first commit)."""
    if trainer.rank != 0 or trainer.generation is None:
        return
    cfg = io.read_config(out)
    cfg["stopped"] = {"reason": trainer.stop_reason, "step": trainer.step, "epoch": trainer.epoch,
                      "best_val_loss": trainer.best_val, "generation": trainer.generation + 1}
    if trainer.stop_val is not None:  # a budget stop's own figure (before the first epoch there is no best)
        cfg["stopped"]["val_loss_at_stop"] = trainer.stop_val
    trainer.generation = rundir.commit(out, {"config.json": rundir.json_bytes(cfg)})
