"""Metrics within a time cap: how many examples a metric over examples can use, from a pilot.

A figure that averages over examples (NLL, an AIS bound, a reconstruction error) costs about the
same per example, so a pilot on a few examples measures that cost and `sized` runs the metric on
as many examples as the cap allows (all of them when they fit), saying why when it used fewer.
`brief` turns a row's figures into the few words a progress line shows.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, TypeVar

R = TypeVar("R")
PILOT = 64  # examples of the pilot run: enough for a fair figure when it is all the cap allows


def plan_examples(seconds_pilot: float, pilot: int, full: int, seconds_left: float) -> int:
    """Examples of the second run after a pilot of ``pilot`` examples took ``seconds_pilot``:
    ``full`` when ``full`` fit in ``seconds_left`` at the pilot's cost per example (which counts
    any fixed cost as per example, so the plan errs on the short side), else as many as fit, but
    never fewer than the pilot's own (then the pilot's result is kept: no second run)."""
    if full <= pilot:
        return full
    per = max(seconds_pilot, 1e-9) / pilot
    if per * full <= seconds_left:
        return full
    return max(pilot, min(full, math.floor(seconds_left / per)))


def sized(run: Callable[[int], R], full: int, cap: float | None, *,
          pilot: int = PILOT) -> tuple[R, int, str | None]:
    """``run(n)`` on the first ``n <= full`` examples, within about ``cap`` seconds.

    Args:
        run: computes the metric on the first ``n`` examples.
        full: examples available; cap: seconds (None or <= 0: no cap, one run on all).
        pilot: examples of the pilot run.
    Returns:
        (the result, ``n`` used, why ``n < full`` or None).
    """
    if cap is None or cap <= 0 or full <= pilot:
        return run(full), full, None
    t0 = time.perf_counter()
    out = run(pilot)
    dt = time.perf_counter() - t0
    n = plan_examples(dt, pilot, full, cap - dt)
    if n > pilot:
        out = run(n)
    if n == full:
        return out, n, None
    if dt > cap:  # a cost that does not shrink with the examples (a log Z, a bound's timesteps)
        return out, n, (f"{n} of {full} examples, and still over the cap: the pilot of {pilot} took {dt:.3g} s "
                        f"against {cap:g} s per metric (--metric-seconds)")
    return out, n, (f"{n} of {full} examples: {dt / pilot:.3g} s per example (pilot of {pilot}) and the cap is "
                    f"{cap:g} s per metric (--metric-seconds)")


def brief(figures: dict[str, Any]) -> str:
    """The figures of one metric row as a short line: ``nll_nats 164.3 ± 0.31 (n=180), ...``."""
    parts = []
    for k, v in figures.items():
        if isinstance(v, dict) and isinstance(v.get("value"), (int, float)):
            se = v.get("stderr")
            se = f" ± {se:.2g}" if isinstance(se, (int, float)) and math.isfinite(se) else ""
            parts.append(f"{k} {v['value']:.4g}{se}" + (f" (n={v['n']})" if "n" in v else ""))
        elif isinstance(v, dict) and isinstance(v.get("distance_ratio"), dict):  # memorization
            parts.append(f"{k}: distance ratio {v['distance_ratio']['value']:.3f}")
        elif isinstance(v, (int, float, str)):
            parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return ", ".join(parts) or "done"
