"""``TrainConfig(compile=True)`` on and off, step for step in one process.

    python -m bench.speed.peers_compile [--cases realnvp,maf,vae] [--rounds 15] [--batch 500]

Two trainers of the same model (same seed) are built, one with ``compile=True``; after the
compiling warm-up (timed apart: ``compile_s`` is the first two compiled steps minus two eager
ones), rounds of 3 steps alternate between them (eager, compiled, eager, ...) on the same
batches, so that a shared machine's load falls on both alike; the table gives the median step
time. realnvp (12 x 2x128) and maf (5 x 2x128) on moons, vae (MLP 256, Bernoulli) on binarized
MNIST-5k; one torch thread. bench/speed/peers.py times the same option over whole runs.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from genlab import make
from genlab.train import TrainConfig, Trainer

from ..common import data_splits, print_table, write_results
from .peers import FLOW_CONFIG
from .timing import interleaved_steps
from .peers_deep import VAE, _splits


def _trainer(family: str, spec, config: dict, x: torch.Tensor, batch: int, compile: bool) -> Trainer:
    model = make(family, spec, seed=0, **config)
    tr = Trainer(model, TrainConfig(seed=0, device="cpu", batch_size=batch, lr=1e-3, ema=None,
                                     lr_schedule="constant", patience=None, progress=False, epochs=1, compile=compile))
    tr.prepare(x)
    return tr


def measure(family: str, rounds: int, batch: int) -> dict:
    if family == "vae":
        s, _ = _splits("vae")
        spec, x, config = s.train.spec, s.train.x, VAE
    else:
        s = data_splits("moons", n=20000)
        spec, x, config = s.train.spec, s.train.x, FLOW_CONFIG[family]
    eager, compiled = (_trainer(family, spec, config, x, batch, c) for c in (False, True))
    g = torch.Generator().manual_seed(1)
    batches = [x[torch.randint(len(x), (batch,), generator=g)] for _ in range(8)]

    def run(tr: Trainer, k: int) -> float:
        t0 = time.perf_counter()
        for i in range(k):
            tr.train_step(batches[(tr.step + i) % len(batches)])
        return time.perf_counter() - t0

    first = run(compiled, 2)  # compiles
    run(eager, 3)
    compile_s = first - run(eager, 2)
    # rounds of 3 steps, eager and compiled in turn
    med, _ = interleaved_steps({"eager": eager.train_step, "compiled": compiled.train_step}, batches[:3], rounds)
    e, c = med["eager"], med["compiled"]
    return {"family": family, "batch": batch, "eager_ms": 1e3 * e, "compiled_ms": 1e3 * c, "speedup": e / c,
            "compile_s": compile_s, "rounds": rounds}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="realnvp,maf,vae")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--batch", type=int, default=500)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for fam in args.cases.split(","):
        rows.append(measure(fam, args.rounds, args.batch))
        print(rows[-1], flush=True)
    print_table(rows, ["family", "batch", "eager_ms", "compiled_ms", "speedup", "compile_s"])
    write_results("peers_compile", rows, "python -m bench.speed.peers_compile " + " ".join(
        argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
