"""Sampling speed: samples per second with a standard error over equal batches."""
from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import Tensor

from ..protocol import GenerativeModel


def timed_samples(model: GenerativeModel, n: int, *, condition: Tensor | None, seed: int,
                  max_seconds: float, batch: int = 500) -> tuple[Tensor, dict[str, Any]]:
    """Draw up to ``n`` samples in batches, fewer when sampling would take over ``max_seconds``.

    Returns:
        (samples (m, *event_shape), speed record: samples/s with the standard error over
        batches, m, seconds, and a note when n was lowered).
    """
    g = torch.Generator().manual_seed(seed)
    pilot = min(n, 32)
    t0 = time.perf_counter()
    out = [model.sample(pilot, condition=None if condition is None else condition[:pilot], generator=g).cpu()]
    dt = max(time.perf_counter() - t0, 1e-9)
    note = None
    if n / (pilot / dt) > max_seconds:  # plan the rest from the pilot batch's speed
        new_n = max(pilot, int(pilot / dt * max_seconds))
        if new_n < n:
            note = (f"n lowered from {n} to {new_n}: sampling runs at {pilot / dt:.3g} samples/s and "
                    f"the cap is {max_seconds:g} s")
            n = new_n
    size = min(batch, max(8, (n - pilot) // 4))  # equal batches after the warm-up, for a standard error
    counts, times, done = [pilot], [dt], pilot
    while done < n:
        k = min(size, n - done)
        c = None if condition is None else condition[done:done + k]
        t0 = time.perf_counter()
        out.append(model.sample(k, condition=c, generator=g).cpu())
        counts.append(k)
        times.append(max(time.perf_counter() - t0, 1e-9))
        done += k
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
