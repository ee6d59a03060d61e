"""Full-batch objectives (closed forms, EM) on several processes: sufficient statistics summed
across ranks.

Under ``torchrun`` every process holds the whole training set. Inside `sharded` (which the
trainer enters around a full-batch objective) `my_rows` keeps this process's share of the rows
and `total` sums tensors over all processes, so an E step costs 1/world of the data on each
process and every process ends with the same parameters as a one-process fit (to float
rounding: the sums are taken in another order). Outside `sharded` both are the identity, so an
objective written with them behaves as before in one process, in `setup` and in tests.
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Iterator

import torch
import torch.distributed as dist
from torch import Tensor

_SHARD: ContextVar[tuple[int, int]] = ContextVar("genlab_shard", default=(0, 1))


@contextlib.contextmanager
def sharded(rank: int, world: int) -> Iterator[None]:
    """Inside the block, `my_rows` and `total` split and sum across ``world`` processes.

    Raises:
        ValueError: ``rank`` outside ``[0, world)``.
    """
    if not 0 <= rank < world:
        raise ValueError(f"sharded: rank {rank} is not in [0, {world})")
    token = _SHARD.set((rank, world))
    try:
        yield
    finally:
        _SHARD.reset(token)


def my_rows(t: Tensor) -> Tensor:
    """This process's rows of ``t`` (every ``world``-th row from its rank; all rows alone)."""
    rank, world = _SHARD.get()
    return t if world == 1 else t[rank::world]


def total(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The sums of each tensor over all processes (one all-reduce for all of them), in the
    tensors' own shapes and dtypes; the tensors themselves outside `sharded`."""
    _, world = _SHARD.get()
    if world == 1:
        return tensors
    dtype = torch.promote_types(tensors[0].dtype, torch.float64)  # sums of floats: no rounding added
    flat = torch.cat([t.reshape(-1).to(dtype) for t in tensors])
    dist.all_reduce(flat)
    out, offset = [], 0
    for t in tensors:
        out.append(flat[offset:offset + t.numel()].view(t.shape).to(t.dtype))
        offset += t.numel()
    return tuple(out)
