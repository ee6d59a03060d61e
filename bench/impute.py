"""Imputation RMSE under MCAR masks beside mean imputation and scikit-learn's IterativeImputer.

    python -m bench.impute [--data digits,breast_cancer] [--rates 0.2,0.5]
                           [--families gaussian,gmm,made,vae] [--draws 5] [--minutes 1]

Models train on the complete 70% training rows (stratified split, seed 0); the test rows get
an MCAR mask (seed 0) and genlab draws ``--draws`` imputations; the estimate is their mean and
"spread" the mean standard deviation across draws (multiple imputation). RMSE is over the
missing entries: in grey levels (0..16) on digits, in units of each feature's training standard
deviation on breast_cancer.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer
from sklearn.model_selection import train_test_split

from genlab.estimator import Estimator
from genlab.tasks.impute import impute, method_for

from .common import print_table, write_results

CONFIGS = {"gaussian": {}, "gmm": {"n_components": 5, "reg": 0.05}, "made": {"hidden": 256, "epochs": 100},
           "vae": {"latent_dim": 8, "epochs": 300}}
LOADERS = {"digits": lambda: load_digits(return_X_y=True), "breast_cancer": lambda: load_breast_cancer(return_X_y=True)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="digits,breast_cancer")
    p.add_argument("--rates", default="0.2,0.5")
    p.add_argument("--families", default=",".join(CONFIGS))
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--minutes", type=float, default=1.0, help="training budget per model")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for data in args.data.split(","):
        X, y = LOADERS[data]()
        Xtr, Xte = train_test_split(X, test_size=0.3, random_state=0, stratify=y)
        # digits: grey levels (all pixels share units); breast_cancer: each feature's training sd
        sd = np.ones(X.shape[1]) if data == "digits" else Xtr.std(0)
        kind = {"data_kind": "discrete", "levels": 17} if data == "digits" else {"data_kind": "continuous"}
        models = {}
        for fam in args.families.split(","):
            t0 = time.perf_counter()
            models[fam] = (Estimator(fam, seed=0, max_minutes=args.minutes, **kind, **CONFIGS.get(fam, {}))
                           .fit(Xtr).model_, time.perf_counter() - t0)
        for rate in map(float, args.rates.split(",")):
            mask = np.random.default_rng(0).random(Xte.shape) < rate
            Xnan = np.where(mask, np.nan, Xte)

            def rmse(est):
                return float(np.sqrt((((est - Xte) / sd)[mask] ** 2).mean()))

            base = {"data": data, "rate": rate, "n_test": len(Xte)}
            t0 = time.perf_counter()
            rows.append({**base, "method": "mean", "rmse": rmse(SimpleImputer().fit(Xtr).transform(Xnan)),
                         "seconds": time.perf_counter() - t0})
            t0 = time.perf_counter()
            # fitted on train + masked test: it only learns models for columns with missing values
            it = IterativeImputer(max_iter=10, random_state=0).fit_transform(np.vstack([Xtr, Xnan]))[len(Xtr):]
            rows.append({**base, "method": "IterativeImputer (sklearn)", "rmse": rmse(it),
                         "seconds": time.perf_counter() - t0})
            print(rows[-2], rows[-1], sep="\n", flush=True)
            for fam, (model, fit_s) in models.items():
                t0 = time.perf_counter()
                draws = impute(model, torch.tensor(Xte, dtype=torch.float32), torch.tensor(mask), args.draws,
                               torch.Generator().manual_seed(0)).reshape(args.draws, len(Xte), -1).double().numpy()
                rows.append({**base, "method": f"genlab {fam} ({method_for(model)})", "rmse": rmse(draws.mean(0)),
                             "rmse_one_draw": rmse(draws[0]),
                             "spread": float((draws.std(0) / sd)[mask].mean()),
                             "seconds": time.perf_counter() - t0, "train_seconds": fit_s})
                print(rows[-1], flush=True)
    print_table(rows, ["data", "rate", "method", "rmse", "rmse_one_draw", "spread", "seconds"])
    write_results("impute", rows, "python -m bench.impute " + " ".join(sys.argv[1:] if argv is None else argv),
                  key=("data", "rate", "method"))


if __name__ == "__main__":
    main()
