"""How long `genlab eval` takes on each family of the conformance list, on digits: wall and CPU
time of the whole command, and the seconds and cut (time cap) of each metric row.

    python -m bench.eval_time [--families all|a,b,...] [--label before] [--runs DIR] [--retrain]
                              [--epochs 1] [--max-minutes 0.3] [-- EVAL FLAGS...]

Each family is trained with `genlab train FAMILY --data digits --epochs 1 --max-minutes 0.3
--threads 1` (a small budget: the question is the evaluation's cost, not the model's quality;
the runs are kept in ``--runs`` and reused, so that two labels time the same models), then
``genlab eval RUN --threads 1`` runs in its own process, one at a time. Wall time is the
command's, CPU time is user+sys of the child (resource.getrusage); on a shared machine judge the
2-minute goal by CPU time when the load is high. ``metric_seconds`` lists each row's seconds as
eval.json records them; ``cut`` the rows the time cap cut, with the reason. A family whose
training fails is reported with the error and not evaluated.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .common import print_table, write_results

GOAL_SECONDS = 120.0


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str]) -> tuple[int, float, float, str]:
    """(exit status, wall s, CPU s of the child, the output's last lines)."""
    cpu0, t0 = _child_cpu(), time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    wall, cpu = time.perf_counter() - t0, _child_cpu() - cpu0
    return p.returncode, wall, cpu, "\n".join((p.stdout + p.stderr).strip().splitlines()[-25:])


def conformance_families() -> list[str]:
    """The families of the conformance list (tests/conftest.py's FAMILY_CONFIGS is every registered family)."""
    import genlab
    return genlab.families()


def train(family: str, run: Path, epochs: int, minutes: float) -> str | None:
    """Train ``family`` on digits into ``run`` unless it is there; the error, or None."""
    if (run / "config.json").exists() and any(run.glob("*.safetensors")):
        return None
    if run.exists():  # a failed or interrupted training: `genlab train` never overwrites
        shutil.rmtree(run)
    cmd = [sys.executable, "-m", "genlab", "train", family, "--data", "digits", "--epochs", str(epochs),
           "--max-minutes", str(minutes), "--threads", "1", "--out", str(run), "--no-progress"]
    rc, wall, _, tail = _timed(cmd)
    print(f"  trained {family} in {wall:.0f} s (exit {rc})", flush=True)
    return None if rc == 0 else tail.splitlines()[-1] if tail else f"exit {rc}"


def evaluate(family: str, run: Path, extra: list[str]) -> dict:
    """Time ``genlab eval RUN`` and read what eval.json says of each row."""
    (run / "eval.json").unlink(missing_ok=True)
    load = os.getloadavg()[0]
    rc, wall, cpu, tail = _timed([sys.executable, "-m", "genlab", "eval", str(run), "--threads", "1", *extra])
    row = {"family": family, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load1": round(load, 2),
           "within_2_min": bool(min(wall, cpu) <= GOAL_SECONDS)}
    if rc != 0:
        return {**row, "error": tail.splitlines()[-1] if tail else f"exit {rc}"}
    res = json.loads((run / "eval.json").read_text())
    row["metric_seconds"] = {k: round(v, 1) for k, v in res.get("seconds", {}).items()}
    row["cut"] = res.get("cut", {})
    row["not_computed"] = sorted(res.get("not_computed", {}))
    slow = sorted(row["metric_seconds"].items(), key=lambda kv: -kv[1])[:3]
    row["slowest"] = ", ".join(f"{k} {v:.0f}" for k, v in slow)
    m = res.get("metrics", {})
    if "nll_nats" in m:
        row["nll_nats"] = round(m["nll_nats"]["value"], 2)
        row["nll_se"] = m["nll_nats"].get("stderr")
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--families", default="all", help="comma-separated families (default: the conformance list)")
    p.add_argument("--label", default="now", help="names this measurement (e.g. before, after)")
    p.add_argument("--runs", default="/tmp/genlab_eval_time", help="where the trained runs are kept and reused")
    p.add_argument("--retrain", action="store_true", help="train again even where a run exists")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-minutes", type=float, default=0.3)
    args, extra = p.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    families = conformance_families() if args.families == "all" else args.families.split(",")
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"uptime at start: {uptime}", flush=True)
    rows = []
    for family in families:
        run = runs / family
        if args.retrain and run.exists():
            shutil.rmtree(run)
        err = train(family, run, args.epochs, args.max_minutes)
        row = {"family": family, "error": f"training failed: {err}"} if err else evaluate(family, run, extra)
        row["label"] = args.label
        rows.append(row)
        print(f"{family}: wall {row.get('wall_s', '-')} s, cpu {row.get('cpu_s', '-')} s, "
              f"load {row.get('load1', '-')}; slowest {row.get('slowest', '-')}; cut {list(row.get('cut', {}))} "
              f"{row.get('error', '')}", flush=True)
    end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"uptime at end: {end}\n")
    print_table(rows, ["family", "wall_s", "cpu_s", "load1", "within_2_min", "slowest", "nll_nats", "nll_se"])
    for r in rows:
        for k, why in r.get("cut", {}).items():
            print(f"  {r['family']} {k} cut: {why}")
    command = "python -m bench.eval_time " + " ".join(argv if argv is not None else sys.argv[1:])
    for r in rows:
        r["uptime_start"], r["uptime_end"] = uptime, end
    write_results("eval_time", rows, command, key=("family", "label"))


if __name__ == "__main__":
    main()
