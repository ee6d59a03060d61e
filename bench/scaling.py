"""Data-parallel scaling on CPU: examples/s with 1 and 2 processes (gloo, one thread each) at a
fixed global batch, and the share of each step that communication adds.

    python -m bench.scaling [--families realnvp,vae] [--data digits] [--global-batch 256] [--steps 60] [--rounds 3]

Each family (its default configuration on the data) runs in one process (no process group: what
``genlab train`` does) and under ``torchrun --nproc_per_node 2`` (DDP), alternately, ``--rounds``
times each; a figure is the median step time. In the 2-process runs a DDP communication hook
averages the gradient buckets (DDP's own all-reduce) in blocks of 5 steps and returns them
unreduced in the blocks between: the communication share is ``1 - t(without) / t(with)``, the
time all-reduce adds to a step after what overlaps with the backward pass, measured under the
same load. Gradient bytes per step (float32) are
printed for the multi-GPU estimate in bench/README.md. Results: bench/results/scaling.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _worker(args: argparse.Namespace) -> None:
    """One process of one measurement: time ``steps`` trainer steps after ``warmup`` steps."""
    import torch.distributed as dist

    from genlab import make
    from genlab.data import load_dataset
    from genlab.train import TrainConfig, Trainer

    torch.set_num_threads(1)
    ds = load_dataset(args.data, seed=0)
    model = make(args.family, ds.spec, seed=0)
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=args.global_batch, device="cpu", progress=False,
                                         seed=0, threads=1))
    rank, size = trainer.rank, trainer.world
    comm = {"on": True}
    if size > 1:
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        def hook(state, bucket):  # unannotated: DDP checks annotations, which this module turns into strings
            if state["on"]:
                return allreduce_hook(None, bucket)  # what DDP does without a hook: average over ranks
            fut = torch.futures.Future()
            fut.set_result(bucket.buffer())  # the bucket unreduced: the step without communication
            return fut

        for fn in trainer.loss_fns:
            if isinstance(fn, torch.nn.parallel.DistributedDataParallel):
                fn.register_comm_hook(comm, hook)
    trainer.prepare(ds.x)
    g = torch.Generator().manual_seed(0)
    times: dict[bool, list[float]] = {True: [], False: []}
    for step in range(args.warmup + args.steps):
        # blocks of 5 steps with and without all-reduce, interleaved: both see the same machine load
        comm["on"] = size == 1 or (step // 5) % 2 == 0
        idx = torch.randint(len(ds.x), (args.global_batch,), generator=g)[rank::size]  # this rank's share
        if size > 1:
            dist.barrier()  # each step timed from a common start
        t0 = time.perf_counter()
        trainer.train_step(ds.x[idx])
        if size > 1:
            dist.barrier()
        if step >= args.warmup:
            times[comm["on"]].append(time.perf_counter() - t0)
    grads = sum(p.numel() for o in trainer.objectives for p in o.parameters)
    if rank == 0:
        med = {k: sorted(v)[len(v) // 2] if v else None for k, v in times.items()}  # medians: robust to load
        print("RESULT " + json.dumps({"step_s": med[True], "step_s_nocomm": med[False],
                                      "examples_per_s": args.global_batch / med[True],
                                      "grad_mb": 4 * grads / 2**20, "params": sum(p.numel() for p in model.parameters())}))
    if size > 1:
        dist.destroy_process_group()


def _measure(family: str, world: int, args: argparse.Namespace) -> dict:
    worker = ["-m", "bench.scaling", "--worker", "--family", family, "--data", args.data,
              "--global-batch", str(args.global_batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    cmd = [sys.executable] + worker if world == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(world)] + worker
    env = {**os.environ, "GENLAB_BACKEND": "gloo", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{family} on {world} processes failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--families", default="realnvp,vae")
    p.add_argument("--data", default="digits")
    p.add_argument("--global-batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3, help="launches of each world size, alternating")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--family", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _worker(args)
        return
    from bench.common import machine, print_table, write_results

    load = os.getloadavg()
    rows = []
    for fam in args.families.split(","):
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for _ in range(args.rounds):  # 1 and 2 processes alternate, so that both see the same load
            for world in (1, 2):
                runs[world].append(_measure(fam, world, args))
        t1 = _median([r["step_s"] for r in runs[1]])
        t2 = _median([r["step_s"] for r in runs[2]])
        share = _median([1 - r["step_s_nocomm"] / r["step_s"] for r in runs[2]])
        rows.append({
            "family": fam, "data": args.data, "global_batch": args.global_batch, "params": runs[1][0]["params"],
            "grad_mb": runs[1][0]["grad_mb"], "step_ms_1": 1e3 * t1, "step_ms_2": 1e3 * t2,
            "step_ms_2_nocomm": 1e3 * _median([r["step_s_nocomm"] for r in runs[2]]),
            "ex_per_s_1": args.global_batch / t1, "ex_per_s_2": args.global_batch / t2, "speedup_2": t1 / t2,
            "comm_share_2": share,
        })
        print(f"{fam}: done", file=sys.stderr)
    print_table(rows, ["family", "params", "grad_mb", "step_ms_1", "step_ms_2", "step_ms_2_nocomm", "ex_per_s_1",
                       "ex_per_s_2", "speedup_2", "comm_share_2"])
    load_after = os.getloadavg()
    print(f"load average before {load[0]:.2f}, after {load_after[0]:.2f} (1 min); {machine()}")
    for r in rows:
        r.update(load_before=load[0], load_after=load_after[0], steps=args.steps)
    write_results("scaling", rows, "python -m bench.scaling " + " ".join(sys.argv[1:]), key=("family", "data"))


if __name__ == "__main__":
    main()
