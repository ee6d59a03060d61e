"""Density estimation on a 2-D toy: fit four families, compare their held-out NLL, draw samples.

    python examples/density.py                    # writes examples-out/density/samples.png
    python examples/density.py --out DIR --epochs 100

Each family is built with `genlab.make` (a torch `nn.Module`) and trained with the one
`genlab.Trainer`: closed form for `gaussian`, EM for `gmm`, a bandwidth chosen on the validation
split for `kde`, Adam for the `realnvp` flow. The negative log-likelihood (NLL) of the held-out
test split, in nats per example (lower is better), is comparable across them because every one is
an exact density of the same data. `gaussian` is the trivial baseline a model has to beat.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import genlab
from genlab.data import split
from genlab.metrics import nll
from genlab.train import TrainConfig

# family -> its own settings (every other one keeps the family's default; `genlab train FAMILY --help`
# lists them all, with their defaults)
FAMILIES = {
    "gaussian": {},
    "gmm": {"n_components": 12},
    "kde": {},
    "realnvp": {"n_layers": 6, "hidden": 32},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("examples-out/density"), help="folder for samples.png")
    p.add_argument("--data", default="moons", help="a 2-D toy: moons circles 8gaussians checkerboard rings ...")
    p.add_argument("--n", type=int, default=3000, help="examples in the data set (80/10/10 split)")
    p.add_argument("--epochs", type=int, default=40,
                   help="training epochs of realnvp (its default is 200; the other three converge within theirs)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    # the toy is drawn from --seed; the split is a seeded permutation: same seed, same numbers
    s = split(genlab.load_dataset(args.data, n=args.n, seed=args.seed), seed=args.seed)
    print(f"{args.data}: {len(s.train.x)} train, {len(s.val.x)} validation, {len(s.test.x)} test examples")

    models, rows = {}, []
    for family, settings in FAMILIES.items():
        model = genlab.make(family, s.train.spec, seed=args.seed, **settings)  # same seed, same weights
        # trainer settings left out take the family's preference (realnvp: a cosine learning-rate
        # schedule); the flow gets a short budget of small batches, the others stop when EM or
        # their closed form is done
        budget = {"epochs": args.epochs, "batch_size": 64} if family == "realnvp" else {}
        cfg = TrainConfig(seed=args.seed, progress=False, **budget)
        t0 = time.perf_counter()
        genlab.Trainer(model, cfg).fit(s.train.x, None, s.val.x)  # keeps the best validation epoch
        seconds = time.perf_counter() - t0
        est = nll(model, s.test.x)  # mean -log p(x) with its standard error (genlab.metrics.Estimate)
        models[family] = model
        size = sum(t.numel() for t in model.state_dict().values())  # weights, or kde's stored points
        rows.append((family, est.value, est.stderr, seconds, size))

    print(f"\n{'family':<10}{'test NLL (nats)':>18}{'train s':>10}{'numbers kept':>14}")
    for family, value, se, seconds, size in sorted(rows, key=lambda r: r[1]):
        print(f"{family:<10}{value:>11.3f} ± {se:.3f}{seconds:>10.1f}{size:>14,}")
    best = min(rows, key=lambda r: r[1])
    base = next(r for r in rows if r[0] == "gaussian")
    print(f"\nbest: {best[0]}, {base[1] - best[1]:.3f} nats per example better than the gaussian baseline")

    # samples of each model beside the test data; randomness comes from an explicit generator
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(models) + 1, figsize=(3 * (len(models) + 1), 3), sharex=True, sharey=True)
    panels = [("test data", s.test.x)] + [
        (f, m.sample(len(s.test.x), generator=torch.Generator().manual_seed(args.seed))) for f, m in models.items()]
    for ax, (title, x) in zip(axes, panels):
        x = x.detach().cpu()
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5)
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(args.out / "samples.png", dpi=100)
    print(f"samples: {args.out / 'samples.png'}")


if __name__ == "__main__":
    main()
