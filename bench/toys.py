"""Test NLL of the density families on the 2-D toys, beside the true entropy (../shared/DATA.md).

    python -m bench.toys [--toys moons,rings] [--families nsf,gmm] [--n 20000] [--n-test 100000]

Each family trains with its own defaults (model settings, trainer settings, default epochs), on
one thread, on ``--n`` generated points (80/10/10 train / val / test). It is scored on
``--n-test`` FRESH points of the same toy (another seed): the gap to the entropy is a few
hundredths of a nat, and the 10 % test split of 20,000 points leaves a standard error of
~0.015 nats, too wide to resolve it; 100,000 points bring it to ~0.003.

The true entropy H is the lowest achievable expected NLL, so NLL - H >= 0 measures the gap.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import torch

from genlab.data import load_dataset

from .common import data_splits, fit_and_score, print_table, write_results

ENTROPY = {"moons": 2.386, "8gaussians": 2.832, "checkerboard": 3.466, "rings": 2.627, "circles": 3.271,
           "2spirals": 2.647, "pinwheel": None}
DEFAULT_TOYS = "moons,8gaussians,rings,2spirals,checkerboard"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--toys", default=DEFAULT_TOYS, help=f"comma-separated, from {','.join(ENTROPY)}")
    p.add_argument("--families", default="nsf")
    p.add_argument("--n", type=int, default=20000, help="points generated per toy for train / val / test")
    p.add_argument("--n-test", type=int, default=100000, help="fresh points the test NLL is measured on")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock cap per fit (none: the defaults' epochs)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # the benchmark machine is shared; one thread per run
    rows = []
    for toy in args.toys.split(","):
        splits = data_splits(toy, n=args.n)
        splits = dataclasses.replace(splits, test=load_dataset(toy, seed=1, n=args.n_test))
        for fam in args.families.split(","):
            load = os.getloadavg()[0]
            r = fit_and_score(fam, splits, max_minutes=args.max_minutes)
            r.update(toy=toy, entropy=ENTROPY[toy], load_before=round(load, 2), load_after=round(os.getloadavg()[0], 2),
                     gap=(r["test_nll"] - ENTROPY[toy]) if ENTROPY[toy] is not None else None)
            rows.append(r)
            print(f"{toy:12s} {fam:9s} NLL {r['test_nll']:.4f} ± {r['test_nll_se']:.4f}  H {ENTROPY[toy]}  "
                  f"{r['steps']} steps  {r['train_seconds']:.0f} s (load {r['load_before']}-{r['load_after']})",
                  flush=True)
    print()
    print_table(rows, ["toy", "family", "test_nll", "test_nll_se", "entropy", "gap", "steps", "train_seconds",
                       "load_after"])
    write_results("toys", rows, "python -m bench.toys " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("toy", "family"))


if __name__ == "__main__":
    main()
