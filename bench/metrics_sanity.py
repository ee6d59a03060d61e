"""Do the sample metrics rank models the right way? On moons: the true distribution's own fresh
samples must score best, a GMM with 128 components next, and a single Gaussian worst.

    python -m bench.metrics_sanity [--seeds 3] [--n 2000] [--n-train 5000]

Each seed draws a training set (for the two models), an independent reference set (the "real"
side of every metric, so that fitting the training points' noise earns nothing) and fresh
points; fits the GMM-128 and the Gaussian with genlab's trainer, and scores n samples of each,
and n fresh moons points, against the reference. Metrics: MMD^2 (lower is better), precision,
recall, coverage (higher), density (closer to 1), classifier-FID on the features of genlab's
classifier trained on the moon labels (lower), the Fréchet distance of the raw 2-D points
(only means and covariances, which a fitted Gaussian matches by construction: reported, not
ranked), and the memorization distance ratio against the training set (reported, not ranked).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

import numpy as np
from sklearn.datasets import make_moons

from genlab.data import DataSpec, load_dataset
from genlab.metrics.classifier import classifier_features, fit_classifier
from genlab.metrics.fid import fid
from genlab.metrics.memorization import memorization
from genlab.metrics.samples import density_coverage, mmd, precision_recall
from genlab import make
from genlab.train import TrainConfig, Trainer

from .common import print_table, write_results

MODELS = {"true moons": None, "gmm-128": ("gmm", {"n_components": 128}), "gaussian": ("gaussian", {})}
# metric -> how to turn the value into a "badness" to rank by (lower is better)
RANK = {"mmd": lambda v: v, "precision": lambda v: -v, "recall": lambda v: -v, "coverage": lambda v: -v,
        "density": lambda v: abs(v - 1), "classifier_fid": lambda v: v}


def labelled_moons(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """genlab's moons (same noise, scale and shift) with the moon of each point as its label."""
    x, y = make_moons(n_samples=n, noise=0.1, random_state=seed)
    x = x * 2 + np.array([-1.0, -0.2])
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)


def score(ref: torch.Tensor, x: torch.Tensor, train: torch.Tensor, test: torch.Tensor, clf, seed: int) -> dict:
    p, r = precision_recall(ref, x)
    d, c = density_coverage(ref, x)
    m = mmd(ref, x)
    cf = fid(classifier_features(clf, ref), classifier_features(clf, x), min_examples=len(x), seed=seed)
    f = fid(ref, x, min_examples=len(x), seed=seed)
    mem = memorization(x, train, test, seed=seed)
    out = {}
    for k, e in (("mmd", m), ("precision", p), ("recall", r), ("density", d), ("coverage", c),
                 ("classifier_fid", cf), ("frechet_raw", f), ("memorization_ratio", mem.distance_ratio)):
        out[k], out[k + "_se"] = e.value, e.stderr
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=2000, help="samples scored per model")
    ap.add_argument("--n-train", type=int, default=5000, help="training / reference points")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    per_seed: list[dict] = []
    metrics = list(RANK) + ["frechet_raw", "memorization_ratio"]
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        train, y_train = labelled_moons(args.n_train, 1000 + seed)
        ref = labelled_moons(args.n_train, 3000 + seed)[0]
        fresh = labelled_moons(2 * args.n, 2000 + seed)[0]
        test, own = fresh[:args.n], fresh[args.n:]
        clf, _ = fit_classifier(train, y_train, DataSpec((2,), num_classes=2), name="moons-labelled", seed=seed)
        for label, spec in MODELS.items():
            if spec is None:
                x = own
            else:
                fam, cfg = spec
                model = make(fam, load_dataset("moons", n=8).spec, seed=seed, **cfg)
                Trainer(model, TrainConfig(seed=seed, device="cpu", progress=False)).fit(train)
                x = model.sample(args.n, generator=torch.Generator().manual_seed(seed))
            per_seed.append({"model": label, "seed": seed, **score(ref, x, train, test, clf, seed)})
            print(f"seed {seed} {label:10s} " + " ".join(f"{k}={v:.4g}" for k, v in per_seed[-1].items()
                                                         if k in metrics), flush=True)
    rows = []
    for label in MODELS:
        rs = [r for r in per_seed if r["model"] == label]
        row = {"model": label, "n": args.n, "n_ref": args.n_train, "seeds": args.seeds}
        for k in metrics:
            v = torch.tensor([r[k] for r in rs], dtype=torch.float64)
            row[k] = float(v.mean())
            row[k + "_se"] = float(v.std() / len(v) ** 0.5) if len(v) > 1 else rs[0][k + "_se"]
        rows.append(row)
    order = list(MODELS)
    verdict = {}
    for k, bad in RANK.items():
        ranked = sorted(order, key=lambda m: bad(next(r[k] for r in rows if r["model"] == m)))
        verdict[k] = ranked == order
    for r in rows:
        r["ranking_ok"] = {k: v for k, v in verdict.items()}
    print()
    print_table([{k: v for k, v in r.items() if k != "ranking_ok"} for r in rows],
                ["model"] + [c for k in metrics for c in (k, k + "_se")])
    print("\nranking true < gmm-128 < gaussian holds for: "
          + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in verdict.items()))
    print(f"time {time.perf_counter() - t0:.0f} s")
    write_results("metrics_sanity", rows, "python -m bench.metrics_sanity " + " ".join(sys.argv[1:]),
                  key=("model",))


if __name__ == "__main__":
    main()
