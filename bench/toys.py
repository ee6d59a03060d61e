"""Test NLL of the density families on every 2-D toy, beside the true entropy (DATA.md).

    python -m bench.toys [--toys moons,rings] [--families gaussian,gmm,kde,realnvp,vae,glow,maf,nsf] [--minutes 3]

The true entropy H is the lowest achievable expected NLL, so NLL - H >= 0 measures the gap.
"""
from __future__ import annotations

import argparse
import sys

import torch

from .common import data_splits, fit_and_score, print_table, write_results

ENTROPY = {"moons": 2.386, "8gaussians": 2.827, "checkerboard": 3.466, "rings": 2.627, "circles": 3.271,
           "2spirals": 2.647, "pinwheel": None}
CONFIGS = {"gaussian": {}, "gmm": {"n_components": 16}, "kde": {}, "realnvp": {}, "vae": {},
           "glow": {}, "maf": {"n_layers": 8}, "nsf": {"n_layers": 4, "bins": 16}}
NEURAL = ("realnvp", "vae", "glow", "maf", "nsf")  # trained by gradient steps under the time budget


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--toys", default=",".join(ENTROPY))
    p.add_argument("--families", default=",".join(CONFIGS))
    p.add_argument("--minutes", type=float, default=3.0, help="training budget per neural model")
    p.add_argument("--n", type=int, default=20000, help="points generated per toy (80/10/10 split)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # the benchmark machine is shared; one thread per run
    rows = []
    for toy in args.toys.split(","):
        splits = data_splits(toy, n=args.n)
        for fam in args.families.split(","):
            neural = fam in NEURAL
            r = fit_and_score(fam, splits, CONFIGS.get(fam, {}),
                              **({"epochs": 400, "batch_size": 512, "max_minutes": args.minutes, "patience": 30,
                                  "lr_schedule": "cosine"} if neural else {}))
            r.update(toy=toy, entropy=ENTROPY[toy],
                     gap=(r["test_nll"] - ENTROPY[toy]) if ENTROPY[toy] is not None else None)
            rows.append(r)
            print(f"{toy:12s} {fam:9s} NLL {r['test_nll']:.4f} ± {r['test_nll_se']:.4f}  "
                  f"H {ENTROPY[toy]}  {r['train_seconds']:.0f}s", flush=True)
    print()
    print_table(rows, ["toy", "family", "test_nll", "test_nll_se", "entropy", "gap", "train_seconds", "steps"])
    write_results("toys", rows, "python -m bench.toys " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("toy", "family"))


if __name__ == "__main__":
    main()
