"""Data parallelism through ``torchrun`` with torch's ``DistributedDataParallel``: gloo on CPU,
NCCL on CUDA; rank 0 writes the run.

The unit DDP wraps is one `Objective`, not the model: `ObjectiveModule` holds exactly that
objective's parameters and its ``forward`` computes the objective's loss, so DDP's bucketed
all-reduce runs while ``backward`` is still going. A GAN's critic and generator are two
modules with two optimizers; parameters shared by several objectives sit in several wrappers,
which is safe because the trainer runs one forward/backward at a time and a DDP reducer only
listens to gradient hooks between its own forward and the end of its backward (a generator
loss that also puts gradients on the critic's parameters therefore leaves them unreduced, and
the critic's optimizer clears them before its next step). Full-batch objectives (closed forms,
EM) have no gradients: they run inside `genlab.objectives.shards.sharded`, where each rank
takes its share of the rows and sums sufficient statistics with the others.

Batches: ``batch_size`` is per process (as with torch's DataLoader under DDP), so the global
batch is ``batch_size * world``. The trainer deals each epoch's global order out in strides
(rank r takes examples r, r + world, ...), so step b of all ranks together covers exactly the
examples of step b of one process with the global batch, and averaging the ranks' mean-loss
gradients gives the global mean's gradient: the same run, up to float rounding, when the number
of training examples is a multiple of the world size and the objective draws no noise (with
noise, each rank draws from its own stream: the same in distribution only). Otherwise the last
``n % world`` examples of each epoch's order are left out, as in DistributedSampler(drop_last=True).
A run resumed on another number of processes goes on, but not bit-exactly (the batch is per process).

A process that dies makes the others' next collective fail (gloo at once; NCCL after
``GENLAB_DIST_TIMEOUT``); `name_failed_ranks` turns that into one message naming the rank and the
resume command. Rank 0's checkpoints are whole (atomic generations), so the run resumes.

No FSDP sharding (``--shard``): torch 2.13's ``fully_shard`` runs on CPU with gloo, but it gathers
a module's parameters only around that module's ``forward``, while objectives call the model's
methods (``log_prob``, ``sample``, an encoder); rank 0 alone draws samples and saves the model,
which would wait forever for the other ranks' all-gathers; and checkpoints would hold DTensor
shards. It needs per-family wrapping of the networks and a gathered state dict in the run files.
"""
from __future__ import annotations

import contextlib
import datetime
import gc
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from ..objectives.shards import sharded
from ..protocol import Batch, Loss, Objective

LossFn = Callable[[Batch], Any]


class RankFailed(RuntimeError):
    """Another process of a ``torchrun`` job died or stopped answering; the message names it and
    the command that resumes the run from its last checkpoint."""


def timeout_s() -> float:
    """Seconds a collective waits for the other processes before failing (``GENLAB_DIST_TIMEOUT``;
    default 300: long enough for rank 0's checkpoint writes, short enough not to hang a job)."""
    return float(os.environ.get("GENLAB_DIST_TIMEOUT", "300"))


def world() -> tuple[int, int]:
    """(rank, world size), starting the process group if ``torchrun`` launched us."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or not dist.is_available():
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("GENLAB_BACKEND") != "gloo" else "gloo"
        if backend == "nccl":  # before any CUDA work: each process on its own card
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s()))
    return dist.get_rank(), dist.get_world_size()


def shutdown() -> None:
    """End this process's part in a ``torchrun`` job (a no-op in one process): destroy the
    process group while the interpreter is whole.

    Call it last, after training succeeded and with no trainer left in a variable (the CLI does;
    scripts that use the `Trainer` under torchrun should too). The garbage collection first frees
    the `DistributedDataParallel` wrappers a finished trainer may still hold in a reference cycle:
    left for the interpreter's teardown, they keep the gloo process group alive until then, and
    its threads abort the process ("terminate called without an active exception", exit -6) after
    all its work was done, in about one exit of fifteen. No barrier: the trainer's last collective
    is behind every rank, gloo's destroy is local, and the other ranks must not wait on rank 0
    while it draws the run's pictures (nor a failed rank wait for a dead one)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()
    dist.destroy_process_group()
    gc.collect()


def local_device(requested: str) -> torch.device:
    """The device for this process: ``auto`` takes the local GPU (``LOCAL_RANK`` under torchrun)
    when CUDA is available, else the CPU; ``cuda`` without an index also takes the local GPU, so
    that each process of a job gets its own card."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} asked for, but CUDA is not available here; use --device cpu")
    if requested == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(requested)


class ObjectiveModule(nn.Module):
    """One objective as a module: its parameters (deduplicated, in order) and a ``forward(batch)``
    that returns the objective's `Loss`. The model itself is not a sub-module, so DDP sees and
    reduces only this objective's parameters."""

    def __init__(self, objective: Objective, loss_fn: LossFn):
        super().__init__()
        self.name = objective.name
        unique = list({id(p): p for p in objective.parameters}.values())  # in order, each once
        self.params = nn.ParameterList(unique)  # the same Parameter objects as the model's
        self.loss_fn = loss_fn

    def forward(self, batch: Batch) -> Loss:
        loss = self.loss_fn(batch)
        return loss if isinstance(loss, Loss) else Loss(loss)


def _sharded_call(loss_fn: LossFn, rank: int, size: int) -> LossFn:
    def call(batch: Batch) -> Any:
        with sharded(rank, size):
            return loss_fn(batch)
    return call


def wrap_objectives(objectives: list[Objective], loss_fns: list[LossFn], device: torch.device,
                    size: int) -> list[LossFn]:
    """The callables the trainer computes each objective's loss with: ``loss_fns`` themselves in
    one process; under torchrun, gradient objectives wrapped in `DistributedDataParallel` and
    full-batch ones inside `genlab.objectives.shards.sharded`.

    ``find_unused_parameters`` is on: whether every parameter of an objective gets a gradient in
    a step depends on the family (label embeddings without labels, a GAN loss that skips a
    branch), and a parameter DDP waits for in vain would leave the step's gradients unreduced.
    """
    if size <= 1:
        return list(loss_fns)
    rank = dist.get_rank()
    out: list[LossFn] = []
    for obj, fn in zip(objectives, loss_fns):
        if not any(p.requires_grad for p in obj.parameters):
            out.append(_sharded_call(fn, rank, size))
            continue
        module = ObjectiveModule(obj, fn)
        # buffers live on the model, not here (broadcast_module syncs them after set-up and resume)
        out.append(nn.parallel.DistributedDataParallel(
            module, device_ids=[device] if device.type == "cuda" else None,
            forward_sync_buffers=False, find_unused_parameters=True))
    return out


def broadcast_module(module: torch.nn.Module, size: int) -> None:
    """Make every rank hold rank 0's parameters and buffers (after set-up and on resume)."""
    if size <= 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def barrier(size: int) -> None:
    """Wait until every process reaches this point (after rank 0's files are written)."""
    if size > 1:
        dist.barrier()


def any_rank(flag: bool, size: int, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on some rank (to stop together)."""
    if size <= 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def missing_ranks(size: int, wait_s: float = 3.0) -> list[int]:
    """The ranks that do not answer within ``wait_s`` seconds, asked through torchrun's store
    (which lives in the launcher, so it outlives a dead worker). Each survivor that calls this
    says it is alive, then waits for the others; ``[]`` when every rank answered or the store is
    out of reach."""
    try:
        store = dist.distributed_c10d._get_default_store()
        rank = dist.get_rank()
        store.set(f"genlab/alive/{rank}", "1")
        others = [r for r in range(size) if r != rank]
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            missing = [r for r in others if not store.check([f"genlab/alive/{r}"])]
            if not missing:
                return []
            time.sleep(0.1)
        return missing
    except (RuntimeError, ValueError, AttributeError):  # no store (not launched by torchrun), or it is gone
        return []


_PEER_WORDS = ("gloo", "nccl", "connection closed", "connection reset", "broken pipe", "timed out", "timeout")


def _from_another_rank(e: BaseException) -> bool:
    """A collective that failed (torch's DistError, or the transport's words when an error comes
    through the autograd engine), or the launcher's SIGTERM (as KeyboardInterrupt)."""
    if isinstance(e, (dist.DistError, KeyboardInterrupt)):
        return True
    return any(w in str(e).lower() for w in _PEER_WORDS)


@contextlib.contextmanager
def name_failed_ranks(run_dir: str | Path) -> Iterator[None]:
    """Under torchrun, turn the error a survivor gets when another process dies (a collective
    fails, or torchrun's agent sends SIGTERM) into `RankFailed`, naming the ranks that stopped
    answering and the command that resumes ``run_dir`` from its last checkpoint. Other errors
    pass unchanged; in one process this does nothing."""
    rank, size = world()
    if size <= 1:
        yield
        return

    def terminated(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    except (RuntimeError, KeyboardInterrupt) as e:
        if not _from_another_rank(e):  # this rank's own error (a diverged loss): reported as it is
            raise
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the agent's SIGTERM must not cut the message short
        missing = missing_ranks(size)
        if not missing:
            raise
        who = ", ".join(map(str, missing))
        raise RankFailed(
            f"rank {who} of the {size} torchrun processes failed or stopped answering (rank {rank} saw: "
            f"{str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__}). Training "
            f"stopped on every rank; the last checkpoint in {run_dir} is kept. Continue with "
            f"`torchrun --nproc_per_node {size} -m genlab resume {run_dir}` (or `genlab resume {run_dir}` "
            "in one process)") from None
    finally:
        signal.signal(signal.SIGTERM, before)
