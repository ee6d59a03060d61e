"""TensorBoard event files of a run: every record of ``metrics.jsonl`` as scalars at its step.

With ``TrainConfig.tensorboard`` on and a run directory, the first process (rank 0 under torchrun,
as for metrics.jsonl) writes ``RUN/tensorboard/events.out.tfevents.*`` through
`torch.utils.tensorboard.SummaryWriter`; view them with ``tensorboard --logdir RUN/tensorboard``
(or ``--logdir runs`` for every run). Each number of a record becomes a scalar under its
metrics.jsonl name (``loss/nll``, ``grad_norm/nll``, ``val_loss``, ``examples_per_s``, ...) at the
record's ``step``; ``step`` and ``epoch`` are the axes, not series.

The event files follow metrics.jsonl through resumes, one point per step. The writer is flushed
at every checkpoint, so the files hold every record up to the last checkpoint whatever stopped the
process. A fit opens a new event file with ``purge_step`` at the checkpoint's step, which hides
every point from that step on (the steps after the checkpoint are trained again), then writes
again the records at that step that metrics.jsonl kept. A run with no event files yet (trained
with the setting off) gets all of metrics.jsonl first. (A session in between with the setting off
leaves a gap: nothing here reads the event files back.)

The event files are outputs like metrics.jsonl and samples.png, not part of the run's committed
state (`genlab.rundir`'s manifest): loading, resuming and the hand-edit checks ignore them.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

FOLDER = "tensorboard"
INSTALL = 'pip install "genlab[tensorboard]"'  # or: pip install tensorboard
_AXES = ("step", "epoch")


class TensorBoardMissing(ImportError, RuntimeError):
    """``tensorboard=True`` was asked for, and the tensorboard package is not installed.

    An ImportError (a package is missing) and a RuntimeError (what the command line reports as a
    one-line error rather than a traceback)."""


def _summary_writer() -> type:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch raises ImportError itself when the package is absent
        raise TensorBoardMissing(f"tensorboard=True (--tensorboard) needs the tensorboard package, which is not "
                                 f"installed ({e}); install it with `{INSTALL}` (or `pip install tensorboard`), "
                                 "or train without --tensorboard") from None
    return SummaryWriter


def check(config: Any, out: Path | None) -> None:
    """Fail now, before any training, when ``config.tensorboard`` is asked for without the package;
    warn when there is no run directory to write the event files to.

    Raises:
        TensorBoardMissing: the tensorboard package is not installed.
    """
    if not config.tensorboard:
        return
    _summary_writer()
    if out is None:
        warnings.warn("tensorboard=True writes its event files under the run directory, and this trainer has "
                      "none: pass out=DIR to Trainer to get RUN/tensorboard/ (nothing is logged)", stacklevel=3)


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The series a ``metrics.jsonl`` record adds: each int or float entry but the axes (a bool such
    as ``done``, a string such as ``stop``, a None validation loss are not numbers to plot)."""
    return {k: float(v) for k, v in record.items()
            if k not in _AXES and isinstance(v, (int, float)) and not isinstance(v, bool)}


class Events:
    """A SummaryWriter on ``folder`` that hides every point from ``purge_step`` on.

    Args:
        folder: where the event files go (``RUN/tensorboard``).
        purge_step: the step from which earlier sessions' points are hidden (the checkpoint's step).
        flush_secs: seconds between flushes while training (checkpoints and `close` flush too).
    """

    def __init__(self, folder: Path, purge_step: int, flush_secs: int = 10):
        self.writer = _summary_writer()(log_dir=str(folder), purge_step=purge_step, flush_secs=flush_secs)
        from tensorboard.compat.proto.summary_pb2 import Summary  # present wherever SummaryWriter imports
        self._summary = Summary

    def add(self, record: dict[str, Any]) -> None:
        """Write the record's numbers as scalars at its step (a record without a step is skipped)."""
        step = record.get("step")
        values = scalars(record)
        if not isinstance(step, int) or isinstance(step, bool) or not values:
            return
        # one event for the whole record, through the writer's own file writer (as add_scalar does):
        # add_scalar makes one event per value, about 4x the CPU time of a training record
        summary = self._summary(value=[self._summary.Value(tag=k, simple_value=v) for k, v in values.items()])
        self.writer._get_file_writer().add_summary(summary, global_step=step)

    def flush(self) -> None:
        """Put every point written so far in the event file (the OS holds it even if the process is killed)."""
        self.writer.flush()

    def close(self) -> None:
        """Flush and close; a failure here (a full disk) is a warning, never an error that would
        hide why training stopped (the checkpoints are committed before this runs)."""
        try:
            self.writer.close()
        except Exception as e:  # noqa: BLE001 - the event files are a convenience; the run is already saved
            warnings.warn(f"TensorBoard's event files could not be closed ({e!r}); metrics.jsonl holds every "
                          "record", stacklevel=2)


def _records(path: Path) -> list[dict[str, Any]]:
    """The records of metrics.jsonl, up to a line cut by a kill."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


def open_events(trainer: Any) -> Events | None:
    """The event writer of a fit about to train from ``trainer.step`` (call it after the checkpoint
    is loaded and metrics.jsonl truncated to it), or None when there is nothing to write: the setting
    is off, there is no run directory, or this is not the first process."""
    if not trainer.config.tensorboard or trainer.out is None or trainer.rank != 0:
        return None
    folder = trainer.out / FOLDER
    fresh = not (folder.is_dir() and any(p.name.startswith("events.out.tfevents.") for p in folder.iterdir()))
    start = 0 if fresh else trainer.step  # no event files yet: all of metrics.jsonl goes in first
    events = Events(folder, purge_step=start)
    for record in _records(trainer.out / "metrics.jsonl"):
        if record.get("step", 0) >= start:
            events.add(record)
    return events


def add(trainer: Any, record: dict[str, Any]) -> None:
    """Pass a metrics.jsonl record to the trainer's event writer, when one is open."""
    if trainer.tb is not None:
        trainer.tb.add(record)


def flush(trainer: Any) -> None:
    """Flush the trainer's event writer, when one is open (before each checkpoint is committed)."""
    if trainer.tb is not None:
        trainer.tb.flush()


def close(trainer: Any) -> None:
    """Close the trainer's event writer, when one is open, and forget it."""
    events, trainer.tb = trainer.tb, None
    if events is not None:
        events.close()
