"""Data parallelism through ``torchrun``: gloo on CPU, NCCL on CUDA; rank 0 writes.

Objectives are not ``forward`` calls, so instead of wrapping the model in
``DistributedDataParallel`` the trainer averages each objective's gradients with one
``all_reduce`` over a flattened buffer after ``backward`` (what DDP does, without its hooks).
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size), starting the process group if ``torchrun`` launched us."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or not dist.is_available():
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("GENLAB_BACKEND") != "gloo" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def local_device(requested: str) -> torch.device:
    """The device for this process: ``auto`` takes the local GPU under torchrun, else CPU."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} asked for, but CUDA is not available here; use --device cpu")
    return torch.device(requested)


def average_gradients(params: list[torch.nn.Parameter], size: int) -> None:
    """All-reduce and average the gradients of ``params`` across ``size`` processes."""
    if size <= 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def broadcast_module(module: torch.nn.Module, size: int) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if size <= 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def any_rank(flag: bool, size: int, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on some rank (to stop together)."""
    if size <= 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)
