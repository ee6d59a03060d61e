"""Imputation RMSE under MCAR and last-columns masks beside mean imputation and IterativeImputer.

    python -m bench.impute [--data digits,breast_cancer] [--masks mcar:0.2,mcar:0.5]
                           [--families gaussian,gmm,made,vae,ddpm] [--draws 5] [--minutes 1]
                           [--no-iterative]

Models train on the complete 70% training rows (stratified split, seed 0); the test rows get a
mask and genlab draws ``--draws`` imputations; the estimate is their mean and "spread" the mean
standard deviation across draws (multiple imputation). Masks: ``mcar:RATE`` (each entry missing
with probability RATE, seed 0) or ``last:FRACTION`` (the last FRACTION of the columns, e.g. the
bottom half of a digit: the missing entries come last in an autoregressive model's order, so
made's imputation is exact ancestral sampling). RMSE is over the missing entries: in grey levels
(0..16) on digits, in units of each feature's training standard deviation on breast_cancer.
Some families are run with more than one imputation setting (``VARIANTS``: vae by MwG with 200
and 20 sweeps and by pseudo-Gibbs with 20 and 200; ddpm by RePaint without and with resampling;
made also by forced MCMC where its default is ancestral). ``--no-iterative``
skips IterativeImputer (its earlier rows in the results file stay).
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

from genlab.estimators import Estimator
from genlab.tasks.impute import impute, method_for

from .common import print_table, write_results

CONFIGS = {"gaussian": {}, "gmm": {"n_components": 5, "reg": 0.05}, "made": {"hidden": 256, "epochs": 100},
           "vae": {"latent_dim": 8, "epochs": 300},
           "ddpm": {"hidden": 256, "depth": 3, "sample_steps": 100, "max_minutes": 3.0}}
# imputation settings per family: the default method first, then alternatives (keyword arguments of impute)
VARIANTS = {"vae": [{}, {"sweeps": 20}, {"method": "pseudo-gibbs"}, {"method": "pseudo-gibbs", "sweeps": 200}],
            "ddpm": [{}, {"jump": 10, "resample": 3}], "made": [{}, {"method": "mcmc", "only_if": "ancestral"}]}
LOADERS = {"digits": lambda: load_digits(return_X_y=True), "breast_cancer": lambda: load_breast_cancer(return_X_y=True)}


def make_mask(spec: str, shape: tuple[int, int]) -> np.ndarray:
    """``mcar:RATE`` (seed 0) or ``last:FRACTION`` (the last columns): (n, D) bool, True = missing."""
    kind, _, value = spec.partition(":")
    v = float(value)
    if kind == "mcar":
        return np.random.default_rng(0).random(shape) < v
    if kind == "last":
        mask = np.zeros(shape, dtype=bool)
        mask[:, shape[1] - int(round(v * shape[1])):] = True
        return mask
    raise ValueError(f"--masks entries are mcar:RATE or last:FRACTION, got {spec!r}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="digits,breast_cancer")
    p.add_argument("--masks", default="mcar:0.2,mcar:0.5")
    p.add_argument("--families", default=",".join(CONFIGS))
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--minutes", type=float, default=1.0, help="training budget per model")
    p.add_argument("--no-iterative", action="store_true", help="skip IterativeImputer")
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
            cfg = {"max_minutes": args.minutes, **CONFIGS.get(fam, {})}
            models[fam] = (Estimator(fam, seed=0, **kind, **cfg).fit(Xtr).model_, time.perf_counter() - t0)
        for spec in args.masks.split(","):
            mask = make_mask(spec, Xte.shape)
            rate = spec if spec.startswith("last") else float(spec.split(":")[1])
            Xnan = np.where(mask, np.nan, Xte)

            def rmse(est):
                return float(np.sqrt((((est - Xte) / sd)[mask] ** 2).mean()))

            base = {"data": data, "rate": rate, "n_test": len(Xte)}
            t0 = time.perf_counter()
            rows.append({**base, "method": "mean", "rmse": rmse(SimpleImputer().fit(Xtr).transform(Xnan)),
                         "seconds": time.perf_counter() - t0})
            print(rows[-1], flush=True)
            if not args.no_iterative:
                t0 = time.perf_counter()
                # fitted on train + masked test: it only learns models for columns with missing values
                it = IterativeImputer(max_iter=10, random_state=0).fit_transform(np.vstack([Xtr, Xnan]))[len(Xtr):]
                rows.append({**base, "method": "IterativeImputer (sklearn)", "rmse": rmse(it),
                             "seconds": time.perf_counter() - t0})
                print(rows[-1], flush=True)
            for fam, (model, fit_s) in models.items():
                default = method_for(model, torch.tensor(mask))
                for opts in VARIANTS.get(fam, [{}]):
                    opts = dict(opts)
                    if opts.pop("only_if", default) != default:
                        continue
                    info: dict = {}
                    t0 = time.perf_counter()
                    draws = impute(model, torch.tensor(Xte, dtype=torch.float32), torch.tensor(mask), args.draws,
                                   torch.Generator().manual_seed(0), info=info, **opts)
                    draws = draws.reshape(args.draws, len(Xte), -1).double().numpy()
                    label = info["method"] + "".join(f", {k} {v}" for k, v in opts.items() if k != "method")
                    rows.append({**base, "method": f"genlab {fam} ({label})", "rmse": rmse(draws.mean(0)),
                                 "rmse_one_draw": rmse(draws[0]), "spread": float((draws.std(0) / sd)[mask].mean()),
                                 "seconds": time.perf_counter() - t0, "train_seconds": fit_s,
                                 **({"acceptance": info["acceptance"]} if "acceptance" in info else {})})
                    print(rows[-1], flush=True)
    print_table(rows, ["data", "rate", "method", "rmse", "rmse_one_draw", "spread", "seconds"])
    write_results("impute", rows, "python -m bench.impute " + " ".join(sys.argv[1:] if argv is None else argv),
                  key=("data", "rate", "method"))


if __name__ == "__main__":
    main()
