"""Metrics within a time cap: how many examples a metric over examples can use, from a pilot.

A figure that averages over examples (NLL, an AIS bound, a reconstruction error) costs about the
same per example, so a pilot on a few examples measures that cost and `sized` runs the metric on
as many examples as the cap allows (all of them when they fit), saying why when it used fewer.
The same plan sizes a cost counted in steps instead of examples (an AIS log Z: ``unit="AIS
steps"``). `sized_terms` plans a figure whose cost per example is a sum of terms that can be
estimated from a subset (a diffusion bound's timesteps): it keeps every example and evaluates
fewer terms of each first, since at a fixed cost that gives the smaller standard error (the
terms' Monte-Carlo noise adds to the spread between examples, which more examples shrink).
`brief` turns a row's figures into the few words a progress line shows. Each reason starts with
what was cut (``64 of 180 examples``), then ``: `` and why, so that a printer can show the start.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, TypeVar

clock = time.perf_counter  # what the plans measure (tests replace it)

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
          pilot: int = PILOT, unit: str = "examples") -> tuple[R, int, str | None]:
    """``run(n)`` on the first ``n <= full`` examples (or steps: ``unit``), within about ``cap`` seconds.

    Args:
        run: computes the metric on the first ``n`` examples.
        full: examples available; cap: seconds (None or <= 0: no cap, one run on all).
        pilot: examples of the pilot run.
        unit: what ``n`` counts, as the reason names it.
    Returns:
        (the result, ``n`` used, why ``n < full`` or None).
    """
    if cap is None or cap <= 0 or full <= pilot:
        return run(full), full, None
    t0 = clock()
    out = run(pilot)
    dt = clock() - t0
    n = plan_examples(dt, pilot, full, cap - dt)
    if n > pilot:
        out = run(n)
    if n == full:
        return out, n, None
    if dt > cap:  # even the pilot does not fit
        return out, n, (f"{n} of {full} {unit}: the pilot of {pilot} alone took {dt:.3g} s, over the {cap:.3g} s "
                        "it had under the time cap (--metric-seconds)")
    return out, n, (f"{n} of {full} {unit}: {dt / pilot:.3g} s each (pilot of {pilot}) and {cap:.3g} s for it "
                    "under the time cap (--metric-seconds)")


def plan_terms(seconds_pilot: float, pilot: tuple[int, int], full: tuple[int, int],
               seconds_left: float) -> tuple[int, int]:
    """(examples, terms per example) of the second run after a pilot of ``pilot = (examples,
    terms)`` took ``seconds_pilot``, for ``full = (examples, terms)``: everything when it fits at
    the pilot's cost per example-term (fixed costs counted as per term: the plan errs short); else
    every example with as many terms as fit (at least one); else as many examples as fit with one
    term; the pilot's result is kept unless the plan has more examples (or as many, with more terms)."""
    (pn, pk), (n, k) = pilot, full
    per = max(seconds_pilot, 1e-9) / (pn * pk)
    if per * n * k <= seconds_left:
        return n, k
    terms = min(k, math.floor(seconds_left / (per * n)))
    plan = (n, terms) if terms >= 1 else (min(n, math.floor(max(seconds_left, 0.0) / per)), 1)
    return plan if plan[0] > pn or (plan[0] == pn and plan[1] > pk) else (pn, pk)


def sized_terms(run: Callable[[int, int], R], full: int, terms: int, cap: float | None, *, pilot: int = PILOT,
                pilot_terms: int = 8, what: str = "terms") -> tuple[R, int, int, str | None]:
    """``run(n, k)`` on the first ``n <= full`` examples with ``k <= terms`` terms each (an
    unbiased estimate of each example's sum from ``k`` of its ``terms``), within about ``cap`` seconds.

    Args:
        run: computes the metric on the first ``n`` examples from ``k`` terms per example.
        full: examples available; terms: terms of each example's sum; cap: seconds (None or <= 0:
            no cap, one run on everything).
        pilot, pilot_terms: size of the pilot run; what: the terms' name in the reason.
    Returns:
        (the result, ``n``, ``k``, why less than everything was used or None).
    """
    if cap is None or cap <= 0:
        return run(full, terms), full, terms, None
    pn, pk = min(pilot, full), min(pilot_terms, terms)
    t0 = clock()
    out = run(pn, pk)
    dt = clock() - t0
    n, k = plan_terms(dt, (pn, pk), (full, terms), cap - dt)
    if (n, k) != (pn, pk):
        out = run(n, k)
    if (n, k) == (full, terms):
        return out, n, k, None
    return out, n, k, (f"{k} of {terms} {what} per example" + (f", {n} of {full} examples" if n < full else "")
                       + f" (an unbiased stratified estimate of the sum; its noise is in the stderr): "
                       f"{dt / (pn * pk):.3g} s per example and term (pilot of {pn} x {pk}) and {cap:.3g} s for it "
                       "under the time cap (--metric-seconds)")


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
        elif isinstance(v, (int, float)) or isinstance(v, str) and len(v) <= 40:  # a long note: in the cut
            parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return ", ".join(parts) or "done"
