"""Does a run survive kill -9 at any instant? SIGKILL a tiny `genlab train` (realnvp on moons,
3 epochs, a checkpoint every 3 steps and every epoch: tests/crash_worker.py) at random instants
and at every write point of genlab.rundir, then resume it (or, killed before its first commit,
train it again) and compare with an uninterrupted run: the saved model and the checkpoint's
training weights must be bit-identical, `genlab.load` must succeed after the kill, and no
temporary file may be left.

    python -m bench.crash --random 100            # 100 random instants + every write point
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import genlab
from genlab import io, rundir

from .common import machine, print_table, write_results

ROOT = Path(__file__).resolve().parents[1]


class Server:
    """tests/crash_worker.py: one import of genlab, one fork per run."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        self.p = subprocess.Popen([sys.executable, str(ROOT / "tests" / "crash_worker.py")], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, out: Path, **kw) -> int:
        self.p.stdin.write(json.dumps({"out": str(out), **kw}) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())


def weights(run: Path) -> tuple[dict, dict]:
    snap = rundir.read(run, ["checkpoint.safetensors"])
    return genlab.load(run).state_dict(), io.parse_tensors(snap.files["checkpoint.safetensors"], run)


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def trial(server: Server, ref: tuple[dict, dict], run: Path, **kill) -> dict:
    code = server.run(run, **kill)
    committed = (run / rundir.MANIFEST).exists()
    loads = True
    if committed:
        try:
            genlab.load(run)
        except (ValueError, FileNotFoundError):
            loads = False
    again = server.run(run, resume=committed)
    left = [p.name for p in run.iterdir() if p.name.endswith(".tmp") or ".gen" in p.name]
    ok = again == 0 and loads and not left and all(same(a, b) for a, b in zip(ref, weights(run)))
    return {"killed": code == -9, "committed": committed, "load_ok": loads, "identical": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--random", type=int, default=100, help="kills at random instants")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    server, tmp = Server(), Path(tempfile.mkdtemp(prefix="genlab-crash-"))
    log = tmp / "points.txt"
    assert server.run(tmp / "ref", crash_log=str(log)) == 0  # (the first run also pays the imports)
    t = time.perf_counter()
    assert server.run(tmp / "ref2") == 0
    duration = time.perf_counter() - t  # of a warm run: random instants fall inside it
    ref = weights(tmp / "ref")
    points = [ln.split(" ", 1)[1] for ln in log.read_text().splitlines()]
    rng = random.Random(args.seed)
    rows = []
    for i in range(args.random):
        r = trial(server, ref, tmp / f"random{i}", kill_after=rng.uniform(0, duration))
        rows.append({"kind": "random instant", **r})
        if not r["identical"]:
            print(f"random instant {i}: {r}", flush=True)
    for at in range(1, len(points) + 1):
        r = trial(server, ref, tmp / f"point{at}", crash_at=at)
        rows.append({"kind": "write point", **r})
        if not r["identical"]:
            print(f"write point {at} ({points[at - 1]}): {r}", flush=True)
    shutil.rmtree(tmp)
    table = []
    for kind in ("random instant", "write point"):
        rs = [r for r in rows if r["kind"] == kind]
        table.append({"kind": kind, "runs": len(rs), "killed": sum(r["killed"] for r in rs),
                      "had_committed": sum(r["committed"] for r in rs),
                      "load_ok_after_kill": sum(r["load_ok"] for r in rs if r["committed"]),
                      "identical_after_recovery": sum(r["identical"] for r in rs)})
    print(f"uninterrupted run: {duration:.2f} s; {len(points)} write points; {machine()}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print_table(table, ["kind", "runs", "killed", "had_committed", "load_ok_after_kill", "identical_after_recovery"])
    write_results("crash", table, "python -m bench.crash " + " ".join(sys.argv[1:]), key=("kind",))


if __name__ == "__main__":
    main()
