"""Outlier detection: a model of Fashion-MNIST tested on Fashion-MNIST test (inliers) vs MNIST-5k.

    python -m bench.outliers [--family made] [--n 12000] [--minutes 5] [--n-test 2000]

AUROC / AUPR (outliers positive) of the raw likelihood (known to fail: well below 0.5), the
typicality test (Nalisnick et al. 2019), the likelihood ratio against a background model fitted
on the same training data (Ren et al. 2019): "ratio" with a full-covariance Gaussian,
"ratio_perturbed" with the same family trained on the data with --rate of the pixels replaced
by uniform noise (Ren et al.'s background), and the
input-complexity correction with PNG and with zlib (Serra et al. 2020). The threshold is set at a
5% false-positive rate on the validation split; "tpr@5%" is the share of MNIST flagged at it.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from genlab.data import load_dataset, split
from genlab.metrics import bits_per_dim, nll
from genlab.runs import build_model
from genlab.registry import get_family
from genlab.tasks.outliers import (complexity_scores, detection_metrics, likelihood_ratio_scores,
                                   nll_scores, outlier_scores, perturb, threshold_at_fpr)
from genlab.train import Trainer, train_config

from .common import print_table, write_results

CONFIGS = {"made": {"hidden": 512, "components": 5}, "realnvp": {}, "glow": {}, "pixelcnn": {}}


def fit(family: str, splits, config: dict, rate: float = 0.0, **train) -> tuple[object, float]:
    """Train on the training split (values perturbed at ``rate`` for a Ren et al. background)."""
    model = build_model(family, splits.train.spec, config, 0)
    cfg = train_config(get_family(family), seed=0, device="cpu", progress=False, **train)
    g = torch.Generator().manual_seed(1)
    xt, xv = (perturb(x, rate, splits.train.spec.levels, g) for x in (splits.train.x, splits.val.x))
    t0 = time.perf_counter()
    Trainer(model, cfg).fit(xt, None, xv, None)
    return model.eval(), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="made")
    p.add_argument("--n", type=int, default=12000, help="Fashion-MNIST examples (80/10/10 split)")
    p.add_argument("--minutes", type=float, default=5.0, help="training budget of the model")
    p.add_argument("--rate", type=float, default=0.2, help="perturbation rate of the background model's data")
    p.add_argument("--n-test", type=int, default=2000, help="inliers and outliers scored (each)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    splits = split(load_dataset("fashion-mnist", n=args.n, seed=0), seed=0)
    model, secs = fit(args.family, splits, CONFIGS.get(args.family, {}), max_minutes=args.minutes)
    background, bsecs = fit("gaussian", splits, {})
    perturbed, psecs = fit(args.family, splits, CONFIGS.get(args.family, {}), rate=args.rate,
                           max_minutes=args.minutes)
    x_in = splits.test.x[:args.n_test]
    x_out = load_dataset("mnist5k", seed=0).x[:args.n_test]
    test_bpd = bits_per_dim(nll(model, x_in), model.spec.dim).value
    s_in = outlier_scores(model, x_in, splits.val.x, background=background)
    s_out = outlier_scores(model, x_out, splits.val.x, background=background)
    # the input-complexity correction with zlib as the compressor as well
    s_in["complexity_zlib"] = (complexity_scores(s_in["nll"][0], x_in, model.spec.dim, 256, "zlib"), None)
    s_out["complexity_zlib"] = (complexity_scores(s_out["nll"][0], x_out, model.spec.dim, 256, "zlib"), None)
    val_ratio = likelihood_ratio_scores(s_in["nll"][1], nll_scores(perturbed, splits.val.x))
    s_in["ratio_perturbed"] = (likelihood_ratio_scores(s_in["nll"][0], nll_scores(perturbed, x_in)), val_ratio)
    s_out["ratio_perturbed"] = (likelihood_ratio_scores(s_out["nll"][0], nll_scores(perturbed, x_out)), None)
    rows = []
    for method in ("nll", "typicality", "ratio", "ratio_perturbed", "complexity", "complexity_zlib"):
        m = detection_metrics(s_in[method][0], s_out[method][0])
        row = {"family": args.family, "method": method, **m}
        if s_in[method][1] is not None:
            t = threshold_at_fpr(s_in[method][1], 0.05)
            row["tpr@5%"] = float((s_out[method][0] > t).double().mean())
            row["fpr_test@5%"] = float((s_in[method][0] > t).double().mean())
        rows.append({**row, "test_bits_per_dim": test_bpd, "train_seconds": secs, "background_seconds": psecs, "n_train": len(splits.train.x),
                     "n_in": len(x_in), "n_out": len(x_out)})
    print(f"{args.family}: Fashion-MNIST test {test_bpd:.3f} bits/dim after {secs:.0f} s of training")
    print_table(rows, ["family", "method", "auroc", "aupr", "tpr@5%", "fpr_test@5%"])
    write_results("outliers", rows, "python -m bench.outliers " + " ".join(sys.argv[1:] if argv is None else argv),
                  key=("family", "method"))


if __name__ == "__main__":
    main()
