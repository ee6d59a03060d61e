"""Outlier detection: a model of Fashion-MNIST tested on Fashion-MNIST test (inliers) vs MNIST-5k.

    python -m bench.outliers [--family pixelcnn] [--n 12000] [--epochs 3] [--minutes 10] [--n-test 2000]

AUROC / AUPR (outliers positive) of

* ``nll``: the raw likelihood (known to fail: well below 0.5);
* ``typicality``: Nalisnick et al. (2019), one example per test (M = 1), and ``typicality_m2``,
  ``typicality_m5``: the same test on batches of M examples from one source (their eq. 4;
  AUROC over batches: a batch test, not a per-example one);
* ``ratio``: likelihood ratio against a full-covariance Gaussian fitted on the training data, and
  ``ratio_perturbed``: Ren et al. (2019)'s background, the same family and configuration trained
  on the training data with --rate of the pixels replaced by uniform levels and AdamW weight
  decay --bg-weight-decay;
* ``complexity`` (PNG), ``complexity_webp`` (lossless WebP), ``complexity_zlib``: Serra et al.
  (2020), model bits minus compressed bits of the same 8-bit image (the model's NLL is exact
  for the 256 levels, so both count bits of the same bytes).

Thresholds at a 5% false-positive rate on the validation split (which also gives the typical
set's entropy H); "tpr@5%" is the share of MNIST (examples or batches) flagged at it.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from genlab.data import load_dataset, split
from genlab.metrics import bits_per_dim
from genlab.registry import get_family
from genlab import make
from genlab.tasks.outliers import (ByteQuantizer, complexity_scores, detection_metrics, likelihood_ratio_scores,
                                   nll_scores, perturb, threshold_at_fpr, typicality_batch_scores,
                                   typicality_scores)
from genlab.train import TrainConfig, Trainer

from .common import print_table, write_results

CONFIGS = {"made": {"hidden": 512, "components": 5},
           "pixelcnn": {"output": "logistic_mixture", "channels": 32, "n_layers": 5, "components": 5},
           "realnvp": {}, "glow": {}}


def fit(family: str, splits, config: dict, rate: float = 0.0, **train) -> tuple[object, float]:
    """Train on the training split (values perturbed at ``rate`` for a Ren et al. background)."""
    model = make(family, splits.train.spec, seed=0, **config)
    cfg = TrainConfig(seed=0, device="cpu", progress=False, **train).for_family(get_family(family))
    g = torch.Generator().manual_seed(1)
    xt, xv = (perturb(x, rate, splits.train.spec.levels, g) for x in (splits.train.x, splits.val.x))
    t0 = time.process_time()
    Trainer(model, cfg).fit(xt, None, xv, None)
    return model.eval(), time.process_time() - t0


def batched(nll: torch.Tensor, nll_val: torch.Tensor, m: int, seed: int) -> torch.Tensor:
    """Typicality scores of random batches of ``m`` examples (a seeded shuffle first)."""
    perm = torch.randperm(len(nll), generator=torch.Generator().manual_seed(seed))
    return typicality_batch_scores(nll[perm], nll_val, m)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="pixelcnn")
    p.add_argument("--n", type=int, default=12000, help="Fashion-MNIST examples (80/10/10 split)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs of the model (and its background)")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock cap on each training")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rate", type=float, default=0.2, help="perturbation rate of the background model's data")
    p.add_argument("--bg-weight-decay", type=float, default=0.01, help="AdamW weight decay of that background")
    p.add_argument("--bg-epochs", type=int, default=None, help="epochs of that background (default: --epochs)")
    p.add_argument("--n-test", type=int, default=2000, help="inliers and outliers scored (each, at most)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    splits = split(load_dataset("fashion-mnist", n=args.n, seed=0), seed=0)
    cfg, fam = CONFIGS.get(args.family, {}), get_family(args.family)
    trained = fam.training == "MLE" and args.family not in ("gaussian",)
    train = {"epochs": args.epochs, "batch_size": args.batch_size, "max_minutes": args.minutes} if trained else {}
    model, secs = fit(args.family, splits, cfg, **train)
    gauss, _ = fit("gaussian", splits, {})
    bg_train = {**train, "weight_decay": args.bg_weight_decay}
    if args.bg_epochs is not None and trained:
        bg_train["epochs"] = args.bg_epochs
    perturbed, psecs = fit(args.family, splits, cfg, rate=args.rate, **bg_train)
    x_in, x_val = splits.test.x[:args.n_test], splits.val.x
    x_out = load_dataset("mnist5k", seed=0).x[:args.n_test]
    t0 = time.process_time()
    nll = {k: nll_scores(model, x) for k, x in (("in", x_in), ("out", x_out), ("val", x_val))}
    score_secs = time.process_time() - t0
    D = model.spec.dim
    test_bpd = float(bits_per_dim(nll["in"].mean(), D))
    s = {"nll": nll, "typicality": {k: typicality_scores(v, nll["val"]) for k, v in nll.items()}}
    for m in (2, 5):
        s[f"typicality_m{m}"] = {k: batched(v, nll["val"], m, seed=i) for i, (k, v) in enumerate(nll.items())}
    for name, bg in (("ratio", gauss), ("ratio_perturbed", perturbed)):
        s[name] = {k: likelihood_ratio_scores(nll[k], nll_scores(bg, x))
                   for k, x in (("in", x_in), ("out", x_out), ("val", x_val))}
    q = ByteQuantizer.fit(splits.train.x, model.spec.levels)  # 256 levels: the images' own bytes
    for name, comp in (("complexity", "png"), ("complexity_webp", "webp"), ("complexity_zlib", "zlib")):
        s[name] = {k: complexity_scores(nll[k], x, D, compressor=comp, quantizer=q)
                   for k, x in (("in", x_in), ("out", x_out), ("val", x_val))}
    rows = []
    for method, sc in s.items():
        t = threshold_at_fpr(sc["val"], 0.05)
        rows.append({"family": args.family, "method": method, **detection_metrics(sc["in"], sc["out"]),
                     "tpr@5%": float((sc["out"] > t).double().mean()),
                     "fpr_test@5%": float((sc["in"] > t).double().mean()),
                     "test_bits_per_dim": test_bpd, "mnist_bits_per_dim": float(bits_per_dim(nll["out"].mean(), D)),
                     "train_cpu_seconds": secs, "background_cpu_seconds": psecs, "score_cpu_seconds": score_secs,
                     "config": cfg, "train": train, "n_train": len(splits.train.x), "n_in": len(x_in),
                     "n_out": len(x_out), "n_val": len(x_val)})
    print(f"{args.family}: Fashion-MNIST test {test_bpd:.3f} bits/dim, MNIST {rows[0]['mnist_bits_per_dim']:.3f}, "
          f"after {secs:.0f} s CPU of training")
    print_table(rows, ["family", "method", "auroc", "aupr", "tpr@5%", "fpr_test@5%"])
    write_results("outliers", rows, "python -m bench.outliers " + " ".join(sys.argv[1:] if argv is None else argv),
                  key=("family", "method"))


if __name__ == "__main__":
    main()
