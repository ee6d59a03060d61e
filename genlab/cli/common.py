"""What the computing commands share: ``--threads`` / ``--device``, the progress heartbeat, and
the check that an output file is not inside the run a command reads."""
from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Iterator

from ..train.progress import Heartbeat


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_compute_flags(p: argparse.ArgumentParser, *, device: bool = False) -> None:
    """``--threads N`` (and ``--device`` where the command can move its model) on ``p``."""
    g = p.add_argument_group("compute")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads while the command runs (default: torch's, one per core); 1 suits small "
                        "models on few cores")
    if device:
        g.add_argument("--device", default="cpu",
                       help="where to compute: cpu, cuda, cuda:N or auto (CUDA when available) (default: cpu)")


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; other names are checked by torch."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r}: expected cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return str(dev)


@contextlib.contextmanager
def computing(args: argparse.Namespace, desc: str, budget_s: float | None = None) -> Iterator[Heartbeat]:
    """Run a command's work with ``--threads`` applied (restored after) and a progress heartbeat
    (a line every few seconds: `genlab.train.progress`)."""
    import torch

    before = torch.get_num_threads()
    threads = getattr(args, "threads", None)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        # under torchrun the first process speaks for all
        with Heartbeat(desc, budget_s=budget_s, enabled=os.environ.get("RANK", "0") == "0") as beat:
            yield beat
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def outside_run(out: str | Path, run: str | Path, flag: str = "--out") -> Path:
    """``out`` as a Path, refused when it lies inside the run directory ``run``: commands that
    read a run never write into it (it may be read-only, or being trained)."""
    out_path, run_path = Path(out), Path(run)
    try:
        inside = out_path.resolve().is_relative_to(run_path.resolve())
    except OSError:
        inside = False
    if inside:
        raise ValueError(f"{flag} {out} is inside the run directory {run}, which this command only reads; "
                         f"write it elsewhere (e.g. {flag} {out_path.name})")
    return out_path
