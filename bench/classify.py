"""Generative classification accuracy (Bayes' rule over class densities) beside logistic regression.

    python -m bench.classify [--data digits,fashion-mnist] [--families gaussian,gmm,kde,made,maf,vae]
                             [--n-fashion 3000] [--minutes 1.5]

Digits: all 1,797 images (8x8, 17 levels); Fashion-MNIST: the first N images (28x28, 256 levels).
Both are split 70/30 (stratified, seed 0). Each family trains under one time budget, split over its class models.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from genlab.data import load_dataset
from genlab.estimators import GenerativeClassifier

from .common import print_table, write_results

CONFIGS = {"gaussian": {}, "gmm": {"n_components": 3, "reg": 0.1}, "kde": {},
           "made": {"hidden": 256, "epochs": 60}, "maf": {"n_layers": 4, "hidden": 128, "epochs": 60},
           "vae": {"latent_dim": 16, "epochs": 100}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="digits,fashion-mnist")
    p.add_argument("--families", default=",".join(CONFIGS))
    p.add_argument("--n-fashion", type=int, default=3000)
    p.add_argument("--minutes", type=float, default=1.5, help="training budget per family (split over its class models)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for data in args.data.split(","):
        ds = load_dataset(data, n=args.n_fashion if data == "fashion-mnist" else None, seed=0)
        X, y = ds.x.numpy(), ds.y.numpy()
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
        t0 = time.perf_counter()
        lr = LogisticRegression(max_iter=2000).fit(Xtr.reshape(len(Xtr), -1) / X.max(), ytr)
        acc = lr.score(Xte.reshape(len(Xte), -1) / X.max(), yte)
        rows.append({"data": data, "family": "logistic regression (sklearn)", "accuracy": acc,
                     "seconds": time.perf_counter() - t0, "n_train": len(Xtr), "n_test": len(Xte)})
        print(rows[-1], flush=True)
        for fam in args.families.split(","):
            cfg = dict(CONFIGS.get(fam, {}))
            t0 = time.perf_counter()
            clf = GenerativeClassifier(fam, data_kind="discrete", levels=ds.spec.levels, seed=0, **cfg)
            n_models = 1 if clf._uses_conditional() else len(np.unique(ytr))
            clf.set_params(max_minutes=args.minutes / n_models).fit(Xtr, ytr)
            rows.append({"data": data, "family": fam, "config": cfg, "accuracy": clf.score(Xte, yte),
                         "conditional": clf.conditional_, "seconds": time.perf_counter() - t0,
                         "n_train": len(Xtr), "n_test": len(Xte)})
            print(rows[-1], flush=True)
    print_table(rows, ["data", "family", "accuracy", "conditional", "seconds", "n_train", "n_test"])
    write_results("classify", rows, "python -m bench.classify " + " ".join(sys.argv[1:] if argv is None else argv),
                  key=("data", "family"))


if __name__ == "__main__":
    main()
