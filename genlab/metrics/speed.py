"""Sampling speed: samples per second with a standard error over equal batches."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..protocol import GenerativeModel
from . import budget


def timed_samples(model: GenerativeModel, n: int, *, condition: Tensor | None, seed: int,
                  max_seconds: float, batch: int = 500) -> tuple[Tensor, dict[str, Any]]:
    """Draw up to ``n`` samples in batches, fewer when sampling would take over ``max_seconds``:
    the pilot batch's speed plans how many, and a batch that would end past ``max_seconds`` (at
    the speed of the batch before it: a fixed cost per call makes small batches slower than the
    pilot's rate says) is not started.

    Returns:
        (samples (m, *event_shape), speed record: samples/s with the standard error over
        batches, m, seconds, and a note when n was lowered).
    """
    g = torch.Generator().manual_seed(seed)
    pilot, asked = min(n, 32), n
    t0 = budget.clock()
    out = [model.sample(pilot, condition=None if condition is None else condition[:pilot], generator=g).cpu()]
    dt = max(budget.clock() - t0, 1e-9)
    if n / (pilot / dt) > max_seconds:  # plan the rest from the pilot batch's speed
        n = max(pilot, min(n, int(pilot / dt * max_seconds)))
    size = min(batch, max(8, (n - pilot) // 4))  # equal batches after the warm-up, for a standard error
    counts, times, done = [pilot], [dt], pilot
    while done < n:
        k = min(size, n - done)
        if len(times) > 1 and sum(times) + times[-1] * k / counts[-1] > max_seconds:
            n = done
            break
        c = None if condition is None else condition[done:done + k]
        t0 = budget.clock()
        out.append(model.sample(k, condition=c, generator=g).cpu())
        counts.append(k)
        times.append(max(budget.clock() - t0, 1e-9))
        done += k
    note = None if n == asked else (f"n lowered from {asked} to {n}: sampling runs at {pilot / dt:.3g} samples/s "
                                    f"(pilot of {pilot}) and the cap is {max_seconds:g} s")
    x = torch.cat(out)[:n]
    if len(counts) > 2:  # the pilot includes warm-up; rate and its spread from the equal batches
        c_, t_ = torch.tensor(counts[1:], dtype=torch.float64), torch.tensor(times[1:], dtype=torch.float64)
        rate, se = float(c_.sum() / t_.sum()), float((c_ / t_).std() / math.sqrt(len(c_)))
    else:
        rate, se = sum(counts) / sum(times), float("nan")
    speed = {"value": rate, "stderr": se, "n": done, "seconds": sum(times), "batches": len(counts)}
    if note:
        speed["note"] = note
    return x, speed
