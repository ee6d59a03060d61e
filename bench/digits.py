"""Held-out bits/dim on sklearn digits (8x8, 17 levels; dequantized bound in the discrete space).

    python -m bench.digits [--families gaussian,gmm,kde,realnvp,vae] [--minutes 5]

Reference points from the foundation issue: full Gaussian 2.95, 5-component GMM 2.71;
target: realnvp <= 2.8.
"""
from __future__ import annotations

import argparse
import sys

import torch

from .common import data_splits, fit_and_score, print_table, write_results

CONFIGS = {"gaussian": {}, "gmm": {"n_components": 5}, "kde": {}, "realnvp": {}, "vae": {},
           "glow": {"steps": 4}, "maf": {}, "nsf": {}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", default=",".join(CONFIGS))
    p.add_argument("--minutes", type=float, default=5.0, help="training budget per neural model")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    splits = data_splits("digits", seed=args.seed)
    rows = []
    for fam in args.families.split(","):
        neural = fam in ("realnvp", "vae", "glow", "maf", "nsf")
        r = fit_and_score(fam, splits, CONFIGS.get(fam, {}), seed=args.seed,
                          **({"epochs": 1000, "max_minutes": args.minutes, "patience": 50, "lr_schedule": "cosine"}
                             if neural else {}))
        rows.append(r)
        print(f"{fam:9s} {r['bits_per_dim']:.4f} ± {r['bits_per_dim_se']:.4f} bits/dim  "
              f"{r['train_seconds']:.0f}s", flush=True)
    print()
    print_table(rows, ["family", "bits_per_dim", "bits_per_dim_se", "test_nll", "train_seconds", "steps",
                       "stop_reason", "parameters"])
    write_results("digits", rows, "python -m bench.digits " + " ".join(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
