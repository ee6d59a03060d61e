"""Representation learning: linear-probe accuracy on the latent codes of every latent family,
beside raw pixels and PCA with as many components as the code has entries.

    python -m bench.represent [--data digits,fashion-mnist] [--families ae,vae,...]
                              [--minutes-digits 0.33] [--minutes-fashion 1.0]
                              [--n-train 10000] [--n-test 2000]

Data: digits, all 1,797 images (8x8, 17 levels), split 80/20 stratified (seed 0); Fashion-MNIST,
the first ``n_train`` images of the official training set and the first ``n_test`` of the
official test set (28x28, 256 levels). Labels are never shown to the generative models.

Each family is fitted through ``genlab.Estimator`` (unsupervised, seed 0, no validation split, one
thread) for a fixed wall-clock budget (``max_minutes``), and its codes come from
``Estimator.transform``. The probe is scikit-learn's ``LogisticRegression`` (lbfgs,
multinomial) on standardized features; its inverse regularization C is chosen from
{0.01, 0.1, 1} on the last 20% of the training codes, then refitted on all of them. The same
probe is applied to the raw pixels and to PCA (fitted on the training pixels) with the code's size.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import genlab
from genlab.data import load_dataset

from .common import print_table, write_results

# small networks, so that a short single-thread budget still gives many steps
CONFIGS: dict[str, dict] = {
    "ae": {"latent_dim": 16, "hidden": 128},
    "vae": {"latent_dim": 16, "hidden": 128},
    "iwae": {"latent_dim": 16, "hidden": 128},
    "wae": {"latent_dim": 16, "hidden": 128},
    "rbm": {"hidden": 64},
    "realnvp": {"n_layers": 6, "hidden": 64},
    "maf": {"n_layers": 3, "hidden": 256},
    "nsf": {"n_layers": 4, "hidden": 64},
    "glow": {"steps": 4, "hidden": 64},
    "iresnet": {"n_blocks": 4, "hidden": 256},
    "ddpm": {"channels": 16, "hidden": 64, "depth": 1, "sample_steps": 10},
}
C_GRID = (0.01, 0.1, 1.0)
# families left out of one data set's default run, and why (measured on this machine, one thread)
TOO_SLOW = {("fashion-mnist", "ddpm"): "DDIM encoding (10 steps) costs 37 s of one thread per 1,000 28x28 "
                                       "images: ~7.5 min for the 12,000 codes, beyond this benchmark's budget"}


def probe(ztr: np.ndarray, ytr: np.ndarray, zte: np.ndarray, yte: np.ndarray) -> tuple[float, float]:
    """Test accuracy of a standardized multinomial logistic regression, and the C it used
    (chosen on the last 20% of the training rows from `C_GRID`)."""
    if not (np.isfinite(ztr).all() and np.isfinite(zte).all()):
        return float("nan"), float("nan")
    cut = len(ztr) - len(ztr) // 5

    def fit(C, z, y):
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)).fit(z, y)
    val = [fit(C, ztr[:cut], ytr[:cut]).score(ztr[cut:], ytr[cut:]) for C in C_GRID]
    best = C_GRID[int(np.argmax(val))]
    return float(fit(best, ztr, ytr).score(zte, yte)), best


def load(name: str, n_train: int, n_test: int):
    """(Xtr, ytr, Xte, yte) as image arrays (n, 1, H, W) of integer levels."""
    if name == "digits":
        ds = load_dataset("digits")
        X, y = ds.x.numpy(), ds.y.numpy()
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
        return Xtr, ytr, Xte, yte
    ds = load_dataset(name)  # Fashion-MNIST: the 60,000 training images, then the 10,000 test images
    X, y = ds.x.numpy(), ds.y.numpy()
    return X[:n_train], y[:n_train], X[60000:60000 + n_test], y[60000:60000 + n_test]


def run(data: str, families: list[str], minutes: float, n_train: int, n_test: int) -> list[dict]:
    Xtr, ytr, Xte, yte = load(data, n_train, n_test)
    flat_tr, flat_te = Xtr.reshape(len(Xtr), -1), Xte.reshape(len(Xte), -1)
    common = {"data": data, "n_train": len(Xtr), "n_test": len(Xte)}
    pca_cache: dict[int, float] = {}

    def pca_acc(k: int) -> float:
        if k not in pca_cache:
            pca = PCA(n_components=min(k, *flat_tr.shape), random_state=0).fit(flat_tr)
            pca_cache[k] = probe(pca.transform(flat_tr), ytr, pca.transform(flat_te), yte)[0]
        return pca_cache[k]

    t0 = time.perf_counter()
    acc, C = probe(flat_tr, ytr, flat_te, yte)
    rows = [{**common, "family": "raw pixels", "code_size": flat_tr.shape[1], "probe_acc": acc, "C": C,
             "pca_acc": pca_acc(flat_tr.shape[1]), "probe_seconds": time.perf_counter() - t0}]
    print(rows[-1], flush=True)
    for fam in families:
        if (data, fam) in TOO_SLOW:
            rows.append({**common, "family": fam, "skipped": TOO_SLOW[data, fam]})
            print(rows[-1], flush=True)
            continue
        cfg = CONFIGS.get(fam, {})
        est = genlab.Estimator(fam, seed=0, epochs=100_000, max_minutes=minutes, val_fraction=0, **cfg)
        t0 = time.perf_counter()
        est.fit(Xtr)
        t1 = time.perf_counter()
        ztr, zte = est.transform(Xtr), est.transform(Xte)
        t2 = time.perf_counter()
        acc, C = probe(ztr, ytr, zte, yte)
        rows.append({**common, "family": fam, "config": cfg, "code_size": ztr.shape[1], "probe_acc": acc, "C": C,
                     "pca_acc": pca_acc(ztr.shape[1]), "train_seconds": t1 - t0, "steps": est.trainer_.step,
                     "epochs": est.trainer_.epoch, "encode_seconds": t2 - t1,
                     "probe_seconds": time.perf_counter() - t2})
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="digits,fashion-mnist")
    p.add_argument("--families", default=",".join(CONFIGS))
    p.add_argument("--minutes-digits", type=float, default=1 / 3, help="training budget per family on digits")
    p.add_argument("--minutes-fashion", type=float, default=1.0, help="training budget per family on Fashion-MNIST")
    p.add_argument("--n-train", type=int, default=10_000, help="Fashion-MNIST training images (first N)")
    p.add_argument("--n-test", type=int, default=2_000, help="Fashion-MNIST test images (first N)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    t0 = time.perf_counter()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # lbfgs at max_iter=1000: kept as is
    with threadpool_limits(1):
        for data in args.data.split(","):
            minutes = args.minutes_digits if data == "digits" else args.minutes_fashion
            rows += run(data, args.families.split(","), minutes, args.n_train, args.n_test)
    print_table(rows, ["data", "family", "code_size", "probe_acc", "pca_acc", "C", "train_seconds", "epochs",
                       "encode_seconds", "probe_seconds"])
    print(f"total {time.perf_counter() - t0:.0f} s")
    write_results("represent", rows, "python -m bench.represent " + " ".join(sys.argv[1:] if argv is None else argv),
                  key=("data", "family"))


if __name__ == "__main__":
    main()
