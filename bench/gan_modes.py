"""Mode coverage of the GAN losses and regularizers on the 2-D benchmarks of the GAN literature.

    python -m bench.gan_modes [--toys ring,grid] [--configs ns,wgan-gp,...] [--seeds 0,1,2] [--steps 3000]
    python -m bench.gan_modes --toys grid,digits --configs default --steps 16000 --digits-steps 2000

The config ``default`` is ``genlab train gan`` with no settings: the family's own network, loss,
regularizers and trainer defaults (batch size, EMA), which differ between images and vectors
(`genlab.models.gan.resolve_config`); only the number of steps is given. The toy
``digits`` (only with ``default``) trains on sklearn digits' training split, evaluates as
``genlab compare`` does (recall, classifier-FID beside its real-data floor, 180 test images) and
saves 64 samples to bench/results/gan_digits_samples.png.

Data (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): a ring of 8 Gaussians of std
0.02 on the circle of radius 2, and a 5x5 grid of 25 Gaussians of std 0.05 at {-4, -2, 0, 2, 4}^2,
50,000 training points each. After training with the one trainer, 2,500 samples are drawn; a
sample is *high quality* when it lies within 3 std of its nearest mode, and a mode is *covered*
when at least 20 of the 2,500 samples (a fifth of its fair share on the grid) are high-quality
samples of it; ``modes_any`` counts modes with at least one (the looser VEEGAN count).
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from genlab.data.spec import DataSpec
from genlab import make
from genlab.models.gan import GAN
from genlab.train import TrainConfig, Trainer

from .common import RESULTS, data_splits, print_table, write_results

NET = {"hidden": 128, "depth": 3, "latent_dim": 2}
# the named configs change these from the plain AdversarialConfig (no R1, DCGAN's Adam), not
# from gan's own defaults, so that each name means the same whatever those defaults are
BASE = {"lr": 2e-4, "betas": (0.5, 0.999), "r1": 0.0}
CONFIGS: dict[str, dict] = {
    "minimax": {"loss": "minimax"},
    "ns": {"loss": "ns"},
    "wgan": {"loss": "wgan", "clip": 0.01, "n_critic": 5, "betas": (0.5, 0.9), "lr": 5e-4},
    "wgan-gp": {"loss": "wgan-gp", "n_critic": 5, "betas": (0.5, 0.9), "lr": 5e-4},
    "hinge": {"loss": "hinge"},
    "lsgan": {"loss": "lsgan"},
    "ns+sn": {"loss": "ns", "spectral_norm": "critic"},
    "hinge+sn": {"loss": "hinge", "spectral_norm": "critic"},
    "ns+r1": {"loss": "ns", "r1": 0.1},
    "ns+ortho": {"loss": "ns", "ortho": 1e-4, "ortho_on": "both"},
    "lsgan@1e-3": {"loss": "lsgan", "lr": 1e-3},  # the faster learning rate for the longer runs
    "ns+r1@1e-3": {"loss": "ns", "r1": 0.1, "lr": 1e-3},
}
N_TRAIN, N_EVAL, MIN_COUNT = 50_000, 2_500, 20


def modes(toy: str) -> tuple[torch.Tensor, float]:
    """(modes, std) of a toy: the ring of 8 or the 5x5 grid of 25 Gaussians."""
    if toy == "ring":
        t = torch.arange(8) * 2 * math.pi / 8
        return torch.stack([2 * t.cos(), 2 * t.sin()], 1), 0.02
    if toy == "grid":
        v = torch.arange(-4.0, 5.0, 2.0)
        return torch.cartesian_prod(v, v), 0.05
    raise ValueError(f"unknown toy {toy!r}; use ring or grid")


def toy_data(toy: str, n: int, seed: int) -> torch.Tensor:
    centres, std = modes(toy)
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(len(centres), (n,), generator=g)
    return centres[k] + std * torch.randn(n, 2, generator=g)


def coverage(samples: torch.Tensor, toy: str) -> dict:
    """Modes covered (>= MIN_COUNT high-quality samples; and >= 1) and the high-quality share."""
    centres, std = modes(toy)
    d = torch.cdist(samples, centres)
    dist, nearest = d.min(1)
    hq = dist < 3 * std
    counts = torch.bincount(nearest[hq], minlength=len(centres))
    return {"modes": int((counts >= MIN_COUNT).sum()), "modes_any": int((counts > 0).sum()),
            "of": len(centres), "hq_share": float(hq.float().mean())}


def _trainer(name: str, seed: int, steps: int, batch: int, n: int) -> TrainConfig:
    """The bench's trainer settings (cosine schedule, ``batch``), or for ``default`` the family's
    own (`GAN.default_train`) with only the epochs that cover ``steps`` given."""
    if name == "default":
        per_epoch = math.ceil(n / TrainConfig().for_family(GAN).batch_size)
        return TrainConfig(epochs=math.ceil(steps / per_epoch), seed=seed, progress=False, device="cpu")
    return TrainConfig(epochs=math.ceil(steps / math.ceil(n / batch)), batch_size=batch, seed=seed,
                       progress=False, device="cpu", patience=None, lr_schedule="cosine")


def _fit(model, tc: TrainConfig, steps: int, *data) -> tuple[Trainer, float, float]:
    """Train for exactly ``steps`` steps; returns (trainer, wall seconds, CPU seconds of this process)."""
    trainer = Trainer(model, tc, callbacks=[_StopAt(steps)])
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit(*data)
    return trainer, time.perf_counter() - t0, time.process_time() - c0


def run(toy: str, name: str, seed: int, steps: int, batch: int) -> dict:
    x = toy_data(toy, N_TRAIN, seed)
    cfg = {} if name == "default" else {**BASE, **NET, **CONFIGS[name]}
    model = make("gan", DataSpec((2,)), seed=seed, **cfg)
    trainer, seconds, cpu = _fit(model, _trainer(name, seed, steps, batch, N_TRAIN), steps, x)
    s = model.sample(N_EVAL, generator=torch.Generator().manual_seed(10_000 + seed))
    return {"toy": toy, "config": name, "seed": seed, "steps": trainer.step, "train_seconds": seconds,
            "cpu_s_per_step": cpu / trainer.step, **coverage(s, toy)}


def run_digits(seed: int, steps: int) -> dict:
    """``genlab train gan --data digits`` with the defaults for ``steps`` steps, evaluated as
    ``genlab compare --fid-min-examples 180`` evaluates; 64 samples saved as a PNG."""
    from genlab.evaluate import EvalSettings, evaluate
    from genlab.report import save_samples

    splits = data_splits("digits", seed=seed)
    model = make("gan", splits.train.spec, seed=seed)
    tc = _trainer("default", seed, steps, 0, len(splits.train))
    trainer, seconds, cpu = _fit(model, tc, steps, splits.train.x, splits.train.y, splits.val.x, splits.val.y)
    ev = evaluate(model, splits.train, splits.test, settings=EvalSettings(fid_min_examples=180, seed=seed),
                  data_name="digits")
    png = RESULTS / ("gan_digits_samples.png" if seed == 0 else f"gan_digits_samples_seed{seed}.png")
    save_samples(model.sample(64, generator=torch.Generator().manual_seed(seed)), model.spec, png)
    value = lambda d, k: d[k]["value"] if isinstance(d.get(k), dict) else d.get(k)  # noqa: E731
    m, floor = ev["metrics"], ev["floor"]
    return {"toy": "digits", "config": "default", "seed": seed, "steps": trainer.step, "train_seconds": seconds,
            "cpu_s_per_step": cpu / trainer.step, "recall": value(m, "recall"), "precision": value(m, "precision"),
            "classifier_fid": value(m, "classifier_fid"), "classifier_fid_floor": value(floor, "classifier_fid"),
            "samples_png": str(png.relative_to(RESULTS.parent.parent))}


class _StopAt:
    """Trainer callback: stop after exactly ``steps`` steps (training is counted in steps here)."""

    def __init__(self, steps: int):
        self.steps = steps

    def __call__(self, trainer, record) -> None:
        if trainer.step >= self.steps:
            trainer.request_stop(f"{self.steps} steps")
            record["done"] = True


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--toys", default="ring,grid", help="ring, grid, and digits (only with --configs default)")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"default or any of {', '.join(CONFIGS)}")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=3000, help="trainer steps per run on the 2-D toys")
    p.add_argument("--digits-steps", type=int, default=2000, help="trainer steps per run on digits")
    p.add_argument("--batch", type=int, default=256, help="batch size (not for the default config)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    command = "python -m bench.gan_modes " + " ".join(argv if argv is not None else sys.argv[1:])
    toys, names, seeds = args.toys.split(","), args.configs.split(","), [int(v) for v in args.seeds.split(",")]
    if "digits" in toys and names != ["default"]:
        p.error("the digits toy runs only the default config: add --configs default")
    rows = []
    for toy in toys:
        for name in names:
            for seed in seeds:
                if toy == "digits":
                    r = run_digits(seed, args.digits_steps)
                    print(f"digits {name} seed {seed}: recall {r['recall']:.3f}, classifier-FID "
                          f"{r['classifier_fid']:.1f} (floor {r['classifier_fid_floor']:.1f}), {r['steps']} steps, "
                          f"{r['cpu_s_per_step']:.4f} CPU s/step, {r['train_seconds']:.0f}s", flush=True)
                else:
                    r = run(toy, name, seed, args.steps, args.batch)
                    print(f"{toy:5s} {name:9s} seed {seed}: {r['modes']}/{r['of']} modes ({r['modes_any']} with any), "
                          f"{100 * r['hq_share']:.1f}% high quality, {r['train_seconds']:.0f}s", flush=True)
                rows.append(r)
                write_results("gan_modes", [r], command, key=("toy", "config", "seed", "steps"))  # keep partial runs
    summary = []
    for toy in toys:
        for name in names:
            rs = [r for r in rows if r["toy"] == toy and r["config"] == name]
            row = {"toy": toy, "config": name, "seeds": len(rs), "steps": rs[0]["steps"],
                   "s/run": sum(r["train_seconds"] for r in rs) / len(rs)}
            if toy == "digits":
                row.update({"recall (per seed)": "/".join(f"{r['recall']:.3f}" for r in rs),
                            "FID (per seed)": "/".join(f"{r['classifier_fid']:.1f}" for r in rs),
                            "FID floor": rs[0]["classifier_fid_floor"]})
            else:
                row.update({"modes (per seed)": "/".join(str(r["modes"]) for r in rs) + f" of {rs[0]['of']}",
                            "hq % (per seed)": "/".join(f"{100 * r['hq_share']:.1f}" for r in rs),
                            "min modes": min(r["modes"] for r in rs), "min hq %": 100 * min(r["hq_share"] for r in rs)})
            summary.append(row)
    print()
    print_table(summary, ["toy", "config", "seeds", "steps", "modes (per seed)", "hq % (per seed)", "min modes",
                          "min hq %", "recall (per seed)", "FID (per seed)", "FID floor", "s/run"])


if __name__ == "__main__":
    main()
