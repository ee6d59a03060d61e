"""DDPM with its defaults at a step budget: the held-out bound in bits/dim, how long it takes to
compute, and sample quality per number of DDIM steps (classifier-FID with its real-data floor,
precision / recall).

    python -m bench.ddpm [--data digits] [--epochs 100] [--sample-steps 5,10,20,50] [--set key=value ...]

The budget is in epochs (digits: 12 steps of 128 each), never wall-clock, so that the figures do not
depend on the load; the seconds are reported beside them. Bits/dim are minus the full variational
bound of Ho et al. Eq. 5 (every one of the T timesteps, the discretized decoder), in the space of the
discrete data: an upper bound on the discrete NLL, comparable with the other families' bits/dim.
Sample metrics use ``--n-samples`` draws against the test split (classifier features, as
`genlab eval`); the floor is the validation split against the test split. The grid of the default
sampler is saved as bench/samples_ddpm_<data>.png.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from genlab import make
from genlab.metrics import bits_per_dim, nll
from genlab.metrics.classifier import classifier_features, fit_classifier
from genlab.metrics.fid import fid
from genlab.metrics.samples import precision_recall
from genlab.registry import get_family
from genlab.report import save_samples
from genlab.train import TrainConfig, Trainer

from .common import data_splits, print_table, write_results

HERE = Path(__file__).parent


def _value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return None if v.lower() == "none" else v


def sample_quality(model, clf, real: torch.Tensor, n: int, seed: int) -> dict:
    """Classifier-FID, precision and recall of ``n`` draws against the real features; seconds."""
    t0 = time.perf_counter()
    x = model.sample(n, generator=torch.Generator().manual_seed(seed))
    seconds = time.perf_counter() - t0
    f = classifier_features(clf, x)
    F = fid(real, f, min_examples=min(len(real), n))
    p, r = precision_recall(real, f, k=3)
    return {"fid": F.value, "fid_se": F.stderr, "precision": p.value, "recall": r.value,
            f"sample_seconds_{n}": seconds, "x": x}


def run(data: str, epochs: int, config: dict, sample_steps: list[int], n_samples: int, seed: int = 0) -> list[dict]:
    splits = data_splits(data, seed=seed)
    model = make("ddpm", splits.train.spec, seed=seed, **config)
    train = TrainConfig(seed=seed, device="cpu", progress=False, epochs=epochs).for_family(get_family("ddpm"))
    t0 = time.perf_counter()
    tr = Trainer(model, train)
    tr.fit(splits.train.x, splits.train.y, splits.val.x, splits.val.y)
    train_seconds = time.perf_counter() - t0
    model.eval()
    t1 = time.perf_counter()
    e = nll(model, splits.test.x, generator=torch.Generator().manual_seed(seed))
    eval_seconds = time.perf_counter() - t1
    b = bits_per_dim(e, model.spec.dim)
    base = {"data": data, "family": "ddpm", "config": config, "epochs": epochs, "steps": tr.step,
            "train_seconds": train_seconds, "bits_per_dim": b.value, "bits_per_dim_se": b.stderr,
            "test_nll": e.value, "n_test": e.n, "bound_timesteps": model.schedule.T, "bound_seconds": eval_seconds,
            "parameters": sum(p.numel() for p in model.parameters())}
    print(f"{data}: {b.value:.4f} ± {b.stderr:.4f} bits/dim after {tr.step} steps ({train_seconds:.0f} s); "
          f"bound over {model.schedule.T} timesteps on {e.n} examples in {eval_seconds:.1f} s", flush=True)
    clf, _ = fit_classifier(splits.train.x, splits.train.y, splits.train.spec, seed=seed)
    real = classifier_features(clf, splits.test.x)
    floor = fid(real, classifier_features(clf, splits.val.x), min_examples=min(len(real), len(splits.val.x)))
    default_steps, default_sampler = model.sample_steps, model.config.sampler
    rows = []
    for k in sample_steps:
        model.config.sampler, model.config.sample_steps = "ddim", k
        q = sample_quality(model, clf, real, n_samples, seed)
        x = q.pop("x")
        if k == default_steps and default_sampler == "ddim":
            save_samples(x[:64], model.spec, HERE / f"samples_ddpm_{data}.png",
                         title=f"ddpm on {data}: {tr.step} steps, DDIM {k} steps, {b.value:.2f} bits/dim")
        rows.append({**base, "sampler": f"ddim/{k}", **q, "fid_floor": floor.value, "fid_floor_se": floor.stderr})
        print(f"  ddim {k}: classifier-FID {q['fid']:.1f} ± {q['fid_se']:.1f} (floor {floor.value:.1f}), "
              f"precision {q['precision']:.3f}, recall {q['recall']:.3f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="digits")
    p.add_argument("--epochs", type=int, default=get_family("ddpm").default_epochs)
    p.add_argument("--sample-steps", default="5,10,20,50", help="DDIM steps to score (comma list)")
    p.add_argument("--n-samples", type=int, default=2000, help="draws per sample-quality row")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="a ddpm setting other than its default (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # the benchmark machine is shared; one thread per run
    config = {k: _value(v) for k, v in (s.split("=", 1) for s in args.settings)}
    rows = run(args.data, args.epochs, config, [int(k) for k in args.sample_steps.split(",")], args.n_samples,
               args.seed)
    print()
    print_table(rows, ["data", "steps", "bits_per_dim", "bits_per_dim_se", "bound_seconds", "sampler", "fid",
                       "fid_se", "fid_floor", "precision", "recall", f"sample_seconds_{args.n_samples}",
                       "train_seconds"])
    write_results("ddpm", rows, "python -m bench.ddpm " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("data", "sampler"))


if __name__ == "__main__":
    main()
