"""Variance of the encoder gradient of the ELBO under each estimator, on one model and one batch.

    python -m bench.gradients [--draws 200] [--steps 300]

A `vae` (Gaussian latents, 8 dimensions, MLP 64 wide, Bernoulli decoder) is trained for
``--steps`` steps with the reparameterization gradient on sklearn digits binarized at half the
grey scale (level >= 8 of 0..16 -> 1). The same weights are then copied into four estimators of
the encoder gradient of the batch-mean ELBO on one fixed batch of 64 images (all four have the same expectation):

* ``reparam``: the pathwise gradient (Kingma & Welling 2014);
* ``reinforce``: the score function, no control variate (Williams 1992);
* ``reinforce+moving_average``: minus a moving average of the learning signal;
* ``reinforce+learned``: NVIL's ``c + b(x)`` (Mnih & Gregor 2014), ``b`` trained first.

Baselines are fitted on training batches with the model frozen, then held fixed (their state is
restored before every draw). For each estimator, ``--draws`` independent draws of the gradient
give: the total variance (sum over encoder parameters of the per-parameter variance), its ratio to
the reparameterized one, the relative variance (total variance / ||E g||^2, with ||E g||^2
estimated without bias from the reparameterized draws: ||mean||^2 - total variance / draws), and
``mean_gap_over_noise`` = ||mean_e - mean_reparam||^2 / (tr S_e + tr S_reparam) * draws, whose
expectation is 1 when the two estimators have the same mean (a check of unbiasedness).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time

import torch

from genlab.data import load_dataset
from genlab.data.datasets import Dataset
from genlab.data.spec import DataSpec, Kind
from genlab.protocol import Batch
from genlab import make
from genlab.train import TrainConfig, Trainer

from .common import print_table, write_results

CONFIG = {"latent_dim": 8, "hidden": 64, "net": "mlp", "conditional": False}


def binarized_digits() -> Dataset:
    d = load_dataset("digits")
    x = (d.x >= 8).float()
    return Dataset(x, d.y, DataSpec(d.spec.event_shape, Kind.BINARY, num_classes=10), "digits-binarized")


def encoder_grad(model, x: torch.Tensor, seed: int) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    model.elbo_loss(Batch(x, generator=torch.Generator().manual_seed(seed))).value.backward()
    return torch.cat([p.grad.flatten() for p in model.encoder.parameters()])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--steps", type=int, default=300, help="reparameterized training steps first")
    p.add_argument("--baseline-steps", type=int, default=300, help="steps that fit the baselines")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ds = binarized_digits()
    base = make("vae", ds.spec, seed=0, **CONFIG)
    epochs = max(1, round(args.steps * 64 / len(ds)))
    Trainer(base, TrainConfig(epochs=epochs, batch_size=64, device="cpu", progress=False, patience=None)).fit(ds.x)
    x = ds.x[:64]
    rows = []
    for i, (name, extra) in enumerate((("reparam", {}), ("reinforce", {"gradient": "reinforce", "baseline": "none"}),
                        ("reinforce+moving_average", {"gradient": "reinforce", "baseline": "moving_average"}),
                        ("reinforce+learned", {"gradient": "reinforce", "baseline": "learned"}))):
        model = make("vae", ds.spec, seed=0, **{**CONFIG, **extra})
        model.load_state_dict(base.state_dict(), strict=False)
        model.steps_done.zero_()
        if model.baseline is not None:  # fit the baseline on training batches, the model frozen
            opt = torch.optim.Adam(model.baseline.parameters(), lr=1e-3) if extra["baseline"] == "learned" else None
            g = torch.Generator().manual_seed(1)
            for step in range(args.baseline_steps):
                idx = torch.randint(0, len(ds), (64,), generator=g)
                loss = model.elbo_loss(Batch(ds.x[idx], generator=g))
                if opt is not None:
                    opt.zero_grad()
                    loss.value.backward()
                    opt.step()
            frozen = copy.deepcopy(model.baseline.state_dict())
        t0 = time.perf_counter()
        grads = []
        for d in range(args.draws):
            if model.baseline is not None:
                model.baseline.load_state_dict(frozen)
            grads.append(encoder_grad(model, x, 1000 + 100_000 * i + d))  # independent across estimators
        seconds = time.perf_counter() - t0
        G = torch.stack(grads).double()
        rows.append({"estimator": name, "G": G, "draws": args.draws, "batch": len(x),
                     "ms_per_draw": 1000 * seconds / args.draws})
        print(f"{name:26s} total variance {float(G.var(0).sum()):.4g}", flush=True)
    ref = rows[0]["G"]  # the reparameterized draws: the most precise estimate of the true gradient
    n, true_sq = len(ref), float(ref.mean(0).pow(2).sum() - ref.var(0).sum() / len(ref))
    for r in rows:
        G = r.pop("G")
        var = float(G.var(0).sum())
        gap = float((G.mean(0) - ref.mean(0)).pow(2).sum())
        r.update({"total_variance": var, "variance_vs_reparam": var / float(ref.var(0).sum()),
                  "relative_variance": var / true_sq, "true_grad_sq_norm": true_sq,
                  # ~1 when the estimator's mean agrees with the reparameterized one (0 for itself)
                  "mean_gap_over_noise": gap / (var / n + float(ref.var(0).sum()) / n)})
    print()
    print_table(rows, ["estimator", "total_variance", "variance_vs_reparam", "relative_variance",
                       "mean_gap_over_noise", "ms_per_draw"])
    write_results("gradients", rows, "python -m bench.gradients " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("estimator",))


if __name__ == "__main__":
    main()
