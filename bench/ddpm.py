"""DDPM on images under a wall-clock budget: held-out bits/dim (the variational bound) and a sample grid.

    python -m bench.ddpm [--data digits,fashion-mnist] [--minutes 6,5] [--n-fashion 10000]

Bits/dim are minus the bound of Ho et al. Eq. 5 with the discretized Gaussian decoder, in the
space of the discrete data (an upper bound on the discrete NLL, comparable with bench/digits.py).
The sum over t is the unbiased stratified Monte-Carlo estimate over ``--bound-steps``
timesteps per example (``--bound-steps 1000``: the exact sum), on the whole digits test split and
on ``--n-eval`` fashion-mnist test images. Sample grids: bench/samples_ddpm_<data>.png.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from genlab.metrics import bits_per_dim, nll
from genlab.registry import get_family
from genlab.report import save_samples
from genlab import make
from genlab.train import TrainConfig, Trainer

from .common import data_splits, print_table, write_results

HERE = Path(__file__).parent
# per data set: model config, training settings, evaluation size, how the grid is drawn
SETUPS = {
    "digits": {"config": {"timesteps": 1000, "channels": 16}, "n": None, "grid": {},
               "train": {"batch_size": 64}, "file": "samples_ddpm_digits.png"},
    "fashion-mnist": {"config": {"timesteps": 1000, "channels": 8}, "n": 10_000, "train": {"batch_size": 32},
                      "grid": {"sampler": "ddim", "sample_steps": 100}, "file": "samples_ddpm_fashion.png"},
}


def run(data: str, minutes: float, n: int | None, bound_steps: int | None, n_eval: int | None,
        n_val: int, seed: int = 0) -> dict:
    setup = SETUPS[data]
    splits = data_splits(data, n=n or setup["n"], seed=seed)
    cfg = dict(setup["config"])
    model = make("ddpm", splits.train.spec, seed=seed, **cfg)
    train = TrainConfig(seed=seed, device="cpu", progress=False, epochs=100_000,
                         max_minutes=minutes, lr_schedule="constant", lr=2e-3, **setup["train"]).for_family(get_family("ddpm"))
    t0 = time.perf_counter()
    tr = Trainer(model, train)
    # no validation by default: on 2 shared cores every second of the budget goes to training steps
    val = (splits.val.x[:n_val], splits.val.y[:n_val]) if n_val else (None, None)
    tr.fit(splits.train.x, splits.train.y, *val)
    seconds = time.perf_counter() - t0
    model.config.bound_timesteps = bound_steps  # evaluation only: exact (None) or Monte-Carlo
    test = splits.test.x[:n_eval] if n_eval else splits.test.x
    t1 = time.perf_counter()
    e = nll(model, test, batch_size=256)
    eval_seconds = time.perf_counter() - t1
    b = bits_per_dim(e, model.spec.dim)
    for k, v in setup["grid"].items():  # the grid's sampler (a faster one on 28x28)
        setattr(model.config, k, v)
    t2 = time.perf_counter()
    samples = model.sample(64, generator=torch.Generator().manual_seed(seed))
    sample_seconds = time.perf_counter() - t2
    save_samples(samples, model.spec, HERE / setup["file"],
                 title=f"ddpm on {data} ({model.config.sampler}, {model.config.sample_steps or model.schedule.T} steps)")
    return {"data": data, "family": "ddpm", "config": cfg, "bits_per_dim": b.value, "bits_per_dim_se": b.stderr,
            "test_nll": e.value, "n_test": e.n, "bound_timesteps": bound_steps or model.schedule.T,
            "train_seconds": seconds, "steps": tr.step, "stop_reason": tr.stop_reason,
            "eval_seconds": eval_seconds, "sample_seconds_64": sample_seconds,
            "grid_sampler": f"{model.config.sampler}/{model.config.sample_steps or model.schedule.T}",
            "parameters": sum(p.numel() for p in model.parameters())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="digits,fashion-mnist")
    p.add_argument("--minutes", default="6,5", help="training budget per data set (comma list, same order)")
    p.add_argument("--n-fashion", type=int, default=10_000, help="fashion-mnist examples loaded (80/10/10)")
    p.add_argument("--bound-steps", default="100,25", help="timesteps of the bound per data set (comma list)")
    p.add_argument("--n-eval", type=int, default=200, help="fashion-mnist test images scored")
    p.add_argument("--n-val", type=int, default=0, help="validation images (early-stopping bound; 0: none)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # the benchmark machine is shared; one thread per run
    names = args.data.split(",")
    minutes = [float(m) for m in args.minutes.split(",")]
    rows = []
    bound_steps = [int(b) for b in args.bound_steps.split(",")]
    for i, data in enumerate(names):
        fashion = data == "fashion-mnist"
        r = run(data, minutes[min(i, len(minutes) - 1)], args.n_fashion if fashion else None,
                bound_steps[min(i, len(bound_steps) - 1)], args.n_eval if fashion else None, args.n_val, args.seed)
        rows.append(r)
        print(f"{data}: {r['bits_per_dim']:.4f} ± {r['bits_per_dim_se']:.4f} bits/dim, {r['steps']} steps in "
              f"{r['train_seconds']:.0f}s", flush=True)
    print()
    print_table(rows, ["data", "bits_per_dim", "bits_per_dim_se", "bound_timesteps", "n_test", "train_seconds",
                       "steps", "eval_seconds", "sample_seconds_64", "grid_sampler", "parameters"])
    write_results("ddpm", rows, "python -m bench.ddpm " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("data",))


if __name__ == "__main__":
    main()
