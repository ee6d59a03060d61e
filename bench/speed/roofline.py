"""Achieved GFLOP/s of genlab's training steps beside the machine's measured float32 matmul rate.

    python -m bench.speed.roofline [--repeats 20] [--threads 1] [--compile "realnvp moons h128,maf moons"]

For each case, FLOPs per training step are counted by ``torch.utils.flop_counter.FlopCounterMode``
over the forward and backward pass of one step (matmuls and convolutions only: elementwise work,
the optimizer and Python overhead are not counted, so the figure is a lower bound of the work done),
and divided by the median wall time of the one trainer's step (``Trainer.train_step``: loss, backward,
gradient clipping, Adam, logging), measured after warm-up (`bench.speed.timing.interleaved_steps`,
rounds of 3 steps). The reference is ``torch.matmul`` of two
2048 x 2048 float32 matrices in the same process with the same thread count: "percent of peak"
is achieved GFLOP/s over that rate. The cases named in ``--compile`` are measured a second time
with ``TrainConfig(compile=True)`` (the warm-up steps compile; the FLOP count is the eager one).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab.protocol import Batch, Loss
from genlab import make
from genlab.train import TrainConfig, Trainer

from ..common import data_splits, print_table, write_results
from .timing import interleaved_steps

# (name, family, data, n points, model config, batch size, kind)
CASES = [
    ("realnvp moons h128", "realnvp", "moons", 20000, {}, 1024, "mlp"),
    ("realnvp moons h512", "realnvp", "moons", 20000, {"hidden": 512}, 1024, "mlp"),
    ("maf moons", "maf", "moons", 20000, {"n_layers": 8}, 1024, "mlp"),
    ("vae mlp mnist5k", "vae", "mnist5k", None, {"net": "mlp"}, 1024, "mlp"),
    ("vae conv digits", "vae", "digits", None, {"net": "conv"}, 256, "conv"),
    ("realnvp conv digits", "realnvp", "digits", None, {"net": "conv"}, 256, "conv"),
]


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Median rate of ``a @ b`` for square float32 matrices: 2 * size^3 FLOPs per product."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times) / 1e9


def measure(family: str, data: str, n: int | None, config: dict, batch_size: int, repeats: int,
            compile: bool = False) -> dict:
    """FLOPs of one step (forward + backward) and the median time of the trainer's step."""
    splits = data_splits(data, n=n)
    x, y = splits.train.x, splits.train.y
    model = make(family, splits.train.spec, seed=0, **config)
    tr = Trainer(model, TrainConfig(seed=0, device="cpu", batch_size=batch_size,
                                     progress=False, epochs=1, compile=compile))
    x = model.check_input(x)
    tr.prepare(x, y)
    g = torch.Generator().manual_seed(1)

    def batch() -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(len(x), (batch_size,), generator=g)
        return x[idx], y[idx] if y is not None else None

    model.train()
    with FlopCounterMode(display=False) as counter:
        out = tr.objectives[0].loss(Batch(*batch(), tr.generator))  # the first (here: the only) objective
        (out.value if isinstance(out, Loss) else out).backward()
    flops = counter.get_total_flops()
    batches = [batch() for _ in range(3)]
    med, _ = interleaved_steps({"step": lambda b: tr.train_step(*b)}, batches, repeats)  # warms up first
    step_s = med["step"]
    return {"gflop_per_step": flops / 1e9, "step_ms": 1e3 * step_s, "gflops": flops / step_s / 1e9,
            "examples_per_s": batch_size / step_s, "parameters": sum(p.numel() for p in model.parameters())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=20, help="timed rounds of 3 steps per case (median)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    p.add_argument("--cases", default=",".join(c[0] for c in CASES), help="comma-separated case names")
    p.add_argument("--compile", default="realnvp moons h128,maf moons",
                   help="cases also measured with TrainConfig(compile=True)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    wanted = set(args.cases.split(","))
    peak = matmul_gflops()
    print(f"torch.matmul 2048x2048 float32, {args.threads} thread(s): {peak:.1f} GFLOP/s", flush=True)
    rows = [{"case": "matmul 2048", "kind": "reference", "gflops": peak, "percent_of_matmul": 100.0}]
    for name, fam, data, n, cfg, bs, kind in CASES:
        if name not in wanted:
            continue
        for compiled in (False, True) if name in args.compile.split(",") else (False,):
            r = measure(fam, data, n, cfg, bs, args.repeats, compiled)
            label = name + (" compiled" if compiled else "")
            r.update(case=label, family=fam, data=data, batch_size=bs, kind=kind, threads=args.threads,
                     compiled=compiled, percent_of_matmul=100 * r["gflops"] / peak, matmul_gflops=peak)
            rows.append(r)
            print(f"{label:31s} {r['gflops']:7.2f} GFLOP/s  {r['percent_of_matmul']:5.1f}% of matmul  "
                  f"{r['step_ms']:.1f} ms/step", flush=True)
    peak_after = matmul_gflops()  # the machine is shared: a second reading shows how much it drifted
    rows[0]["gflops_after"] = peak_after
    print()
    print_table(rows, ["case", "kind", "batch_size", "gflop_per_step", "step_ms", "examples_per_s", "gflops",
                       "percent_of_matmul"])
    print(f"matmul rate before {peak:.1f}, after {peak_after:.1f} GFLOP/s")
    write_results("roofline", rows, "python -m bench.speed.roofline " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("case",))


if __name__ == "__main__":
    main()
