"""The one interleaved timer of the speed benchmarks.

A shared machine's load changes from one minute to the next (2 cores shared by several jobs), so
nothing is timed alone: the candidates take turns (A, B, C, A, B, C, ...) and the median of each
is reported. `interleaved_steps` does it step by step in one process; `interleaved_runs` does it
for whole runs, each a fresh subprocess.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time


def interleaved_steps(fns: dict, batches: list, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per step of each ``fns[name](batch)``: every function is warmed up on
    ``batches``, then ``rounds`` rounds run each over all of ``batches`` in turn (genlab, peer A,
    peer B, ..., genlab, ...), so that a shared machine's changing load falls on all alike.
    Returns (wall-clock medians, medians of the thread's CPU time, which leaves out the time
    other jobs held the core)."""
    for f in fns.values():  # warm-up (and data-dependent initialisations, compilations)
        for xb in batches:
            f(xb)
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            for xb in batches:
                f(xb)
            wall[name].append((time.perf_counter() - t0) / len(batches))
            cpu[name].append((time.thread_time() - c0) / len(batches))
    return ({k: statistics.median(v) for k, v in wall.items()}, {k: statistics.median(v) for k, v in cpu.items()})


def interleaved_runs(jobs: dict[str, list[str]], repeats: int, label: str) -> dict[str, dict]:
    """Run each job's command (a fresh ``python -m bench.speed...`` that prints one JSON line) ``repeats``
    times, interleaved (A, B, C, A, B, C, ...) so that a shared machine's load falls on all sides
    alike; returns the median of every figure per job (None figures stay None)."""
    runs: dict[str, list[dict]] = {k: [] for k in jobs}
    for rep in range(repeats):
        for lib, cmd in jobs.items():
            if lib not in runs:
                continue
            out = subprocess.run([sys.executable, "-m", *cmd, str(rep)], capture_output=True, text=True)
            if out.returncode:
                print(f"{label}/{lib} failed:\n{out.stderr[-2000:]}", flush=True)
                runs.pop(lib)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            runs[lib].append(r)
            print(f"{label:16s} {lib:15s} rep {rep}: " + "  ".join(
                f"{k} {v:.4g}" for k, v in r.items() if isinstance(v, float)), flush=True)
    return {lib: {k: (statistics.median(r[k] for r in rs) if rs[0][k] is not None else None) for k in rs[0]}
            for lib, rs in runs.items() if rs}
