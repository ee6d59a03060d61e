"""Bounds on a VAE's held-out log-likelihood, loosest to tightest: ELBO, IWAE_k, AIS over codes.

    python -m bench.ais [--data digits] [--epochs 30] [--examples 50] [--steps 100,500]

Trains a vae with the one trainer (``--epochs``, early stopping on validation), then on the first
``--examples`` test images: the ELBO (mean of 20 draws), IWAE_1000 (one estimate) and
`genlab.metrics.ais_latent.ais_log_prob` with 16 chains, 5 leapfrog steps and each of ``--steps``
(Wu et al. 2017). All are nats per example in data space; every one is a lower bound on log p(x)
in expectation, so a smaller NLL is a tighter bound. One thread.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from genlab.metrics.ais_latent import ais_log_prob
from genlab.objectives.elbo import iwae_bound
from genlab import make
from genlab.train import TrainConfig, Trainer

from .common import data_splits, machine, print_table, write_results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="digits")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--examples", type=int, default=50)
    p.add_argument("--steps", default="100,500")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    s = data_splits(a.data)
    model = make("vae", s.train.spec, seed=0)
    Trainer(model, TrainConfig(seed=0, device="cpu", epochs=a.epochs, progress=False)).fit(
        s.train.x, None, s.val.x, None)
    model.eval()
    x = s.test.x[:a.examples]
    g = torch.Generator().manual_seed(0)
    rows = []

    def row(bound: str, lp: torch.Tensor, seconds: float) -> None:
        rows.append({"data": a.data, "bound": bound, "nll_nats": float(-lp.mean()),
                     "se": float(lp.std() / len(lp) ** 0.5), "seconds": seconds, "n": len(lp), "epochs": a.epochs})

    with torch.no_grad():
        t0 = time.perf_counter()
        row("ELBO (20 draws)", torch.stack([model.log_prob(x, generator=g) for _ in range(20)]).mean(0),
            time.perf_counter() - t0)
        t0 = time.perf_counter()
        row("IWAE_1000", iwae_bound(model, x, 1000, g), time.perf_counter() - t0)
    for steps in (int(v) for v in a.steps.split(",")):
        t0 = time.perf_counter()
        lp = ais_log_prob(model, x, steps=steps, chains=16, leapfrog=5, generator=torch.Generator().manual_seed(1))
        row(f"AIS {steps} steps", lp, time.perf_counter() - t0)
    print(f"machine: {machine()}")
    print_table(rows, ["data", "bound", "nll_nats", "se", "seconds", "n"])
    write_results("ais", rows, "python -m bench.ais " + " ".join(sys.argv[1:]), key=("data", "bound"))


if __name__ == "__main__":
    main()
