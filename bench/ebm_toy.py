"""EBM on a 2-D toy: train, draw Langevin samples, plot them beside the data and the energy.

    python -m bench.ebm_toy [--toy moons] [--epochs 30] [--out bench/ebm_moons.png]
    python -m bench.ebm_toy --digits

``--digits``: the defaults as `genlab compare --data digits` trains them (one thread, the
family's default epochs), scored by `genlab.evaluate` with compare's settings (held-out NLL with
log Z by AIS, classifier-FID beside its floor, precision / recall); samples saved to
``bench/results/ebm_digits_samples.png``; then log Z by AIS with 1,000 steps (the evaluation's)
against 3,000 steps.

Writes the figure and bench/results/ebm_toy.json: training time, mean energy of test points vs
of points 3 sd away, the fraction of samples within 0.2 sd of some test point, and the test NLL
``E(x) + log Z`` with log Z by quadrature (the reference in 2-D) and by AIS (``--ais-steps``).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from genlab import make
from genlab.train import TrainConfig, Trainer

from .common import data_splits, print_table, write_results


def digits_defaults(argv: list[str] | None) -> None:
    from .rbm import defaults_on_digits, log_z_check
    row, model = defaults_on_digits("ebm", "bench/results/ebm_digits_samples.png")
    row.update(family="ebm", toy="digits", **log_z_check(model, (1000, 3000)))
    print_table([row], ["model", "steps", "fit_seconds", "load_1min", "bits_per_dim", "fid", "fid_floor", "precision",
                        "recall", "log_z_ais_1000", "log_z_ais_1000_se", "log_z_ais_1000_seconds", "log_z_ais_3000",
                        "log_z_ais_3000_se"])
    write_results("ebm_toy", [row], "python -m bench.ebm_toy " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("toy",))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--toy", default="moons")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--out", default=None)
    p.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    p.add_argument("--ais-steps", type=int, default=1000)
    p.add_argument("--digits", action="store_true", help="the defaults on digits (see above)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.digits:
        return digits_defaults(argv)
    splits = data_splits(args.toy, n=args.n)
    cfg = dict(kv.split("=", 1) for kv in args.set)
    model = make("ebm", splits.train.spec, seed=0, **cfg)
    t0 = time.perf_counter()
    tr = Trainer(model, TrainConfig(epochs=args.epochs, seed=0, device="cpu", progress=False))
    tr.fit(splits.train.x)
    seconds = time.perf_counter() - t0
    g = torch.Generator().manual_seed(1)
    samples = model.sample(2000, generator=g)
    test = splits.test.x
    with torch.no_grad():
        e_data = model.energy(test).mean().item()
        far = test + 3 * test.std(0) * torch.sign(torch.randn(test.shape, generator=g))
        e_far = model.energy(far).mean().item()
        near = (torch.cdist(samples, test).min(1).values < 0.2 * float(test.std())).float().mean().item()
    print(f"{args.toy}: {seconds:.0f}s, {tr.step} steps; mean energy data {e_data:.3f}, far {e_far:.3f}; "
          f"samples within 0.2 sd of a test point: {near:.3f}")
    nll: dict[str, float] = {}
    for method, kw in (("quadrature", {}), ("ais", {"steps": args.ais_steps, "chains": 256})):
        t1 = time.perf_counter()
        log_z, _ = model.log_partition(method, generator=torch.Generator().manual_seed(2), **kw)
        lp, _ = model.log_prob_estimate(test, log_z=log_z)
        nll |= {f"log_z_{method}": log_z.value, f"log_z_{method}_stderr": log_z.stderr,
                f"nll_{method}": float(-lp.mean()), f"seconds_{method}": time.perf_counter() - t1}
        print(f"log Z by {method}: {log_z.value:.4f} ± {log_z.stderr:.4f}; test NLL {float(-lp.mean()):.4f} nats "
              f"({time.perf_counter() - t1:.1f} s)")
    nll["test_outside_box"] = int((~torch.isfinite(lp)).sum())
    out = args.out or f"bench/ebm_{args.toy}.png"
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(12, 4))
    lo, hi = test.min(0).values - 0.5, test.max(0).values + 0.5
    ax[0].scatter(*test[:2000].T, s=2)
    ax[0].set_title(f"{args.toy}: test data")
    ax[1].scatter(*samples.T, s=2, c="C1")
    ax[1].set_title(f"EBM Langevin samples ({model.config.sample_steps} steps from noise)")
    gx, gy = torch.meshgrid(torch.linspace(lo[0], hi[0], 200), torch.linspace(lo[1], hi[1], 200), indexing="xy")
    with torch.no_grad():
        e = model.energy(torch.stack([gx.flatten(), gy.flatten()], 1)).reshape(200, 200)
    ax[2].imshow((-e - (-e).max()).exp(), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto")
    ax[2].set_title("exp(-E(x)) (unnormalised)")
    for a in ax[:2]:
        a.set_xlim(lo[0], hi[0]); a.set_ylim(lo[1], hi[1])
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print("wrote", out)
    write_results("ebm_toy", [{"family": "ebm", "toy": args.toy, "config": cfg, "train_seconds": seconds,
                               "steps": tr.step, "energy_test": e_data, "energy_far": e_far,
                               "samples_near_data": near, **nll}],
                  "python -m bench.ebm_toy " + " ".join(argv if argv is not None else sys.argv[1:]), key=("toy",))


if __name__ == "__main__":
    main()
