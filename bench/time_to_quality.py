"""Time to a good model: CPU time until genlab's held-out NLL first reaches a peer's NLL after the
peer's own budget of training, each library with its own documented defaults.

    python -m bench.time_to_quality [--tasks realnvp-moons,nsf-moons,vae-mnist5k] [--budget 180] [--interval 5]
    python -m bench.time_to_quality --tasks ddpm-digits --budget 180 --interval 10 [--ddpm-timesteps 50]

Protocol. For each task, every peer trains for ``--budget`` seconds of CPU time with its
documented defaults (below); its held-out NLL at the end is the target. genlab then trains with
its defaults (``genlab.make(family, spec)`` and ``Trainer`` with ``TrainConfig().for_family``,
validation and early stopping included, so its validation passes count against its clock) until
its held-out NLL is at or below every peer's target, or ``--cap`` x the budget has passed. The
row gives the first evaluation at which genlab's NLL was at or below the peer's: an upper bound
on the time, at a resolution of ``--interval``; both curves start with the model as built (0 s),
so a 0 means genlab's untrained model already scores at or below the peer's trained one.
genlab's last point is the model ``fit`` hands back (its best validation epoch) when it stopped on
the cap or on its own. ``--genlab-set KEY=VALUE`` runs genlab with a model setting other than its
default (a separate row), against the peers' stored figures with ``--peers-from-results``.

Clock. The machine is shared (2 cores, load 3-7), so time is the process's CPU time
(``time.process_time``) with one torch thread, which other jobs distort far less than wall time;
the held-out NLL is evaluated every ``--interval`` CPU seconds on the same test split for every
library, and the evaluation's CPU time is taken off the clock. The load average at the start
and end of each run is in its row.

Data: the default splits (80/10/10, seed ``--seed``, which also seeds every model and loop).
moons: 10,000 points, raw coordinates on every side.
digits: 8x8 images, 17 levels; the peers get genlab's uniform dequantization and standardization
(with its log-determinant), so every NLL is of the same discrete data. mnist5k: the 5,000 MNIST
digits binarized at half the grey scale (``mnist5k:binary``); NLL = -IWAE_k (``--k``) on the test
split, the same estimator and draws for both. ddpm-digits: the held-out figure is the variational
bound in bits/dim on the test split's discrete images, estimated over ``--ddpm-timesteps`` strata
of the 1000 diffusion steps with the same draws for both libraries (bench/ttq_ddpm.py: one bound
function, each library's noise predictor, schedule and sampler variance). All models are
unconditional (p(x)). Rows are keyed by task, library, seed and budget in the results file.

Peer defaults (the constructor's defaults and the library's own example training settings):
- zuko 1.6: ``zuko.flows.RealNVP(D)`` / ``zuko.flows.NSF(D)`` (3 transforms, hidden (64, 64)),
  Adam lr 1e-3 (its README); zuko sets no batch size, 256 here (genlab's default).
- normflows 1.7: RealNVP as its README builds it (32 AffineCouplingBlocks of MLP [D/2, 64, 64, D],
  zero-initialised, swap permutations); nsf as its neural-spline example (16 x
  AutoregressiveRationalQuadraticSpline(D, 2 hidden layers, 128 units) + LULinearPermute); both
  over a fixed DiagGaussian, Adam lr 5e-4, weight decay 1e-5, batch 512 (its examples).
- pythae 0.1.2: ``VAE(VAEConfig(input_dim=(1, 28, 28)))`` with its default MLP encoder / decoder
  and latent_dim 10, ``reconstruction_loss="bce"`` (the default "mse" has no likelihood for
  binary data), trained as ``BaseTrainerConfig``'s defaults: Adam lr 1e-4, batch 64.
- diffusers 0.42.1: the defaults of its ``train_unconditional.py`` example (DDPMScheduler 1000
  linear steps, AdamW lr 1e-4 with 500 warmup steps and a cosine decay over 100 epochs, batch 16,
  gradient clipping at 1, EMA with warmup) on bench/speed/peers_deep.py's ``UNet2DModel`` for 8x8
  images; the list and its sources are in bench/ttq_ddpm.py.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from typing import Callable

import torch
from torch import Tensor, nn

from .common import RESULTS, data_splits, print_table, write_results

TASKS = {"realnvp-moons": ("realnvp", "moons", ("zuko", "normflows")),
         "nsf-moons": ("nsf", "moons", ("zuko", "normflows")),
         "realnvp-digits": ("realnvp", "digits", ("zuko", "normflows")),
         "nsf-digits": ("nsf", "digits", ("zuko", "normflows")),
         "vae-mnist5k": ("vae", "mnist5k:binary", ("pythae",)),
         "ddpm-digits": ("ddpm", "digits", ("diffusers",))}
UNITS = {"ddpm": "bits/dim"}  # the held-out figure's unit where it is not nats per example


def load() -> float:
    """The one-minute load average (what the machine's other jobs were doing)."""
    return os.getloadavg()[0]


class Clock:
    """CPU seconds of this process spent training: evaluation time is taken off."""

    def __init__(self) -> None:
        self.t0, self.excluded = time.process_time(), 0.0

    def train_s(self) -> float:
        return time.process_time() - self.t0 - self.excluded

    def evaluate(self, fn: Callable[[], float]) -> float:
        c0 = time.process_time()
        try:
            return fn()
        finally:
            self.excluded += time.process_time() - c0


@dataclasses.dataclass
class Curve:
    """Held-out NLL at each evaluation: (training CPU seconds, steps, NLL)."""
    points: list[tuple[float, int, float]] = dataclasses.field(default_factory=list)

    def first_below(self, target: float) -> tuple[float, int] | None:
        for t, step, v in self.points:
            if v <= target:
                return t, step
        return None

    def best(self) -> float:
        return min(v for _, _, v in self.points)


# ---------------------------------------------------------------- peers

def _flow_peer(model: str, lib: str, dim: int) -> tuple[nn.Module, Callable[[Tensor], Tensor], dict]:
    """(module, log_prob, optimiser settings) of a peer's flow with its documented defaults."""
    if lib == "zuko":
        import zuko
        flow = (zuko.flows.RealNVP if model == "realnvp" else zuko.flows.NSF)(dim)
        return flow, lambda x: flow().log_prob(x), {"lr": 1e-3, "weight_decay": 0.0, "batch": 256}
    import normflows as nf
    flows: list[nn.Module] = []
    if model == "realnvp":
        for _ in range(32):
            flows += [nf.flows.AffineCouplingBlock(nf.nets.MLP([dim // 2, 64, 64, 2 * (dim - dim // 2)], init_zeros=True)),
                      nf.flows.Permute(dim, mode="swap")]
    else:
        for _ in range(16):
            flows += [nf.flows.AutoregressiveRationalQuadraticSpline(dim, 2, 128), nf.flows.LULinearPermute(dim)]
    m = nf.NormalizingFlow(nf.distributions.DiagGaussian(dim, trainable=False), flows)
    return m, m.log_prob, {"lr": 5e-4, "weight_decay": 1e-5, "batch": 512}


def _pythae_vae() -> tuple[nn.Module, Callable[[Tensor], Tensor], dict]:
    from pythae.models import VAE, VAEConfig
    m = VAE(VAEConfig(input_dim=(1, 28, 28), reconstruction_loss="bce"))
    return m, lambda xb: m({"data": xb}).loss, {"lr": 1e-4, "weight_decay": 0.0, "batch": 64}


def _setup_peer(task: str, lib: str, s, k: int, ddpm_t: int, seed: int) -> dict:
    """A peer ready to train: ``module``, ``step`` (one optimisation step on a data batch), ``nll``
    (its held-out figure), ``batch`` and ``settings``."""
    family, data, _ = TASKS[task]
    x, x_test = s.train.x, s.test.x
    if family == "ddpm":
        from .ttq_ddpm import diffusers_peer
        return diffusers_peer(x, x_test, s.train.spec.levels, ddpm_t, seed)
    if family == "vae":
        from .binarized_vae import pythae_bound
        module, loss_fn, opt_cfg = _pythae_vae()

        def nll() -> float:
            module.eval()
            with torch.no_grad():
                v = -pythae_bound(module, x_test, k).mean().item()
            module.train()
            return v
    else:
        from genlab.data.preprocess import Preprocess, default_preprocess
        pre = default_preprocess(s.train.spec) if s.train.spec.is_discrete else Preprocess()
        pre.fit(x)
        module, peer_lp, opt_cfg = _flow_peer(family, lib, s.train.spec.dim)
        g = torch.Generator().manual_seed(seed)

        def log_prob(v: Tensor, gen: torch.Generator) -> Tensor:
            z, logdet = pre(v, gen)
            return peer_lp(z.flatten(1)) + logdet

        def loss_fn(xb: Tensor) -> Tensor:
            return -log_prob(xb, g).mean()

        def nll() -> float:
            module.eval()
            with torch.no_grad():
                v = -log_prob(x_test, torch.Generator().manual_seed(2)).mean().item()
            module.train()
            return v
    opt = torch.optim.Adam(module.parameters(), lr=opt_cfg["lr"], weight_decay=opt_cfg["weight_decay"])

    def step(xb: Tensor) -> None:
        loss = loss_fn(xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"module": module, "step": step, "nll": nll, "batch": opt_cfg["batch"],
            "settings": {"lr": opt_cfg["lr"], "weight_decay": opt_cfg["weight_decay"]}}


def run_peer(task: str, lib: str, s, budget: float, interval: float, k: int, ddpm_t: int, seed: int) -> dict:
    """Train a peer for ``budget`` CPU seconds in its idiomatic loop, evaluating every ``interval``."""
    torch.manual_seed(seed)
    x = s.train.x
    load0 = load()
    peer = _setup_peer(task, lib, s, k, ddpm_t, seed)
    batch, gen, curve, step = peer["batch"], torch.Generator().manual_seed(seed), Curve(), 0
    curve.points.append((0.0, 0, peer["nll"]()))  # the model as built, before the clock starts
    clock = Clock()
    next_eval = interval
    while True:
        order = torch.randperm(len(x), generator=gen)
        for b in range(len(x) // batch):
            peer["step"](x[order[b * batch:(b + 1) * batch]])
            step += 1
            t = clock.train_s()
            if t >= next_eval or t >= budget:
                curve.points.append((t, step, clock.evaluate(peer["nll"])))
                next_eval += interval
                print(f"  {task} {lib:9s} {t:6.1f}s step {step:6d} nll {curve.points[-1][2]:.4f}", flush=True)
            if t >= budget:
                return {"task": task, "library": lib, "seed": seed, "budget_s": budget, "steps": step,
                        "nll": curve.points[-1][2], "nll_init": curve.points[0][2],
                        "unit": UNITS.get(TASKS[task][0], "nats"), "curve": curve.points,
                        "parameters": sum(p.numel() for p in peer["module"].parameters()), "batch": batch,
                        **peer["settings"], "load_start": load0, "load_end": load()}


# ---------------------------------------------------------------- genlab

def run_genlab(task: str, s, targets: dict[str, float], cap: float, interval: float, k: int, ddpm_t: int,
               seed: int, config: dict[str, str], train: dict[str, str] | None = None) -> dict:
    """genlab with its defaults (model settings ``config`` and trainer settings ``train`` aside)
    until its NLL is at or below every target, or ``cap`` CPU seconds."""
    from genlab import make
    from genlab.registry import get_family
    from genlab.train import TrainConfig, Trainer
    family, data, _ = TASKS[task]
    spec = dataclasses.replace(s.train.spec, num_classes=None)  # p(x), as the peers
    model = make(family, spec, seed=seed, **config)
    cfg = TrainConfig(seed=seed, device="cpu", progress=False).for_family(get_family(family))
    if train:
        cfg = dataclasses.replace(cfg, **{key: _typed(getattr(cfg, key), v) for key, v in train.items()})
    x_test, goal = s.test.x, min(targets.values())
    curve, state = Curve(), {"next": interval}
    load0 = load()

    def nll(tr: Trainer | None) -> float:
        was = model.training
        model.eval()
        with torch.no_grad(), tr.ema_weights() if tr is not None else contextlib.nullcontext():
            if family == "vae":
                from .binarized_vae import bound
                v = -bound(model, x_test, k).mean().item()
            elif family == "ddpm":
                from .ttq_ddpm import genlab_bits
                v = genlab_bits(model, x_test, ddpm_t)
            else:
                v = -model.log_prob(x_test, generator=torch.Generator().manual_seed(2)).mean().item()
        model.train(was)
        return v

    def callback(tr: Trainer, record: dict) -> None:
        t = clock.train_s()
        if t < state["next"] and t < cap:
            return
        state["next"] += interval
        curve.points.append((t, tr.step, clock.evaluate(lambda: nll(tr))))
        print(f"  {task} genlab    {t:6.1f}s step {tr.step:6d} nll {curve.points[-1][2]:.4f}", flush=True)
        if curve.points[-1][2] <= goal:
            tr.request_stop("reached every peer's NLL")
        elif t >= cap:
            tr.request_stop("time cap")

    curve.points.append((0.0, 0, nll(None)))  # the model as built, before the clock starts
    tr = Trainer(model, cfg, callbacks=[callback])
    clock = Clock()
    tr.fit(s.train.x, None, s.val.x)
    if not curve.points or curve.points[-1][0] < clock.train_s() - 1e-9:  # stopped on its own (early stopping)
        curve.points.append((clock.train_s(), tr.step, clock.evaluate(lambda: nll(tr))))
    return {"task": task, "library": "genlab", "seed": seed, "config": config, "steps": tr.step,
            "unit": UNITS.get(family, "nats"), "stop_reason": tr.stop_reason, "best_nll": curve.best(),
            "nll_init": curve.points[0][2], "curve": curve.points,
            "parameters": sum(p.numel() for p in model.parameters()), "batch": cfg.batch_size, "lr": cfg.lr,
            "lr_schedule": cfg.lr_schedule, "load_start": load0,
            "load_end": load(), "train_config": {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
                                                 if isinstance(getattr(cfg, f.name), (int, float, str, type(None)))}}


def _typed(old, text: str):
    """``text`` as the type of the trainer setting it replaces (``none`` for None)."""
    if text.lower() == "none":
        return None
    return type(old)(text) if old is not None else float(text)


def stored_peers(task: str, seed: int, budget: float) -> list[dict]:
    """The peers' rows of an earlier run (same task, seed and budget) from the results file."""
    path = RESULTS / "time_to_quality.json"
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    rows = [r for r in old if r["task"] == task and r.get("seed") == seed and r.get("budget_s") == budget
            and not r["library"].startswith("genlab")]
    if {r["library"] for r in rows} != set(TASKS[task][2]):
        raise SystemExit(f"--peers-from-results: {path} has no run of every peer of {task} with seed {seed} "
                         f"and budget {budget:g}; run without the flag first")
    return rows


def run_task(task: str, budget: float, cap_factor: float, interval: float, k: int, ddpm_t: int,
             seed: int, genlab_set: dict[str, str] | None = None, reuse_peers: bool = False,
             genlab_train: dict[str, str] | None = None) -> list[dict]:
    """Peers (trained now, or their stored rows with ``reuse_peers``), then genlab against them.

    Returns the rows to store: fresh peer rows get the comparison with genlab; genlab's row (named
    after ``genlab_set``, its config overrides, if any) has it per peer under ``vs``."""
    family, data, peers = TASKS[task]
    s = data_splits(data, seed=seed)
    if reuse_peers:
        rows = stored_peers(task, seed, budget)
    else:
        rows = [run_peer(task, lib, s, budget, interval, k, ddpm_t, seed) for lib in peers]
    targets = {r["library"]: r["nll"] for r in rows}
    g = run_genlab(task, s, targets, cap_factor * budget, interval, k, ddpm_t, seed, genlab_set or {}, genlab_train)
    g["budget_s"] = budget  # the peers' budget it was measured against
    variant = {**(genlab_set or {}), **(genlab_train or {})}
    if variant:
        g["library"] = "genlab " + ",".join(f"{key}={v}" for key, v in variant.items())
    curve, g["vs"] = Curve(g["curve"]), {}
    for r in rows:
        hit = curve.first_below(r["nll"])
        c = {"genlab_s": hit[0] if hit else None, "genlab_steps": hit[1] if hit else None,
             "ratio": hit[0] / r["budget_s"] if hit else None}  # genlab's time / the peer's: goal <= 0.5
        c["goal_met"] = c["ratio"] is not None and c["ratio"] <= 0.5
        g["vs"][r["library"]] = {"peer_nll": r["nll"], **c}
        if not reuse_peers and not variant:
            r.update(c, genlab_best_nll=curve.best())
    return ([] if reuse_peers else rows) + [g]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    p.add_argument("--budget", type=float, default=180.0, help="each peer's training, CPU seconds")
    p.add_argument("--cap", type=float, default=1.0, help="genlab's cap, as a multiple of --budget")
    p.add_argument("--interval", type=float, default=5.0, help="CPU seconds between evaluations")
    p.add_argument("--k", type=int, default=50, help="importance samples of the vae's IWAE bound")
    p.add_argument("--ddpm-timesteps", type=int, default=50, help="strata of 1..T in the ddpm's held-out bound")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--genlab-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a genlab model setting other than its default (a variant row, e.g. denoiser=eps)")
    p.add_argument("--genlab-train", action="append", default=[], metavar="KEY=VALUE",
                   help="a genlab trainer setting other than the family's default (a variant row, e.g. epochs=100)")
    p.add_argument("--peers-from-results", action="store_true",
                   help="take the peers' figures from an earlier run with the same task, seed and budget")
    args = p.parse_args(argv)
    if any("=" not in kv for kv in args.genlab_set + args.genlab_train):
        p.error(f"--genlab-set and --genlab-train expect KEY=VALUE, got {args.genlab_set + args.genlab_train}")
    genlab_set = dict(kv.split("=", 1) for kv in args.genlab_set)
    genlab_train = dict(kv.split("=", 1) for kv in args.genlab_train)
    torch.set_num_threads(1)
    rows: list[dict] = []
    for task in args.tasks.split(","):
        if task not in TASKS:
            p.error(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
        rows += run_task(task, args.budget, args.cap, args.interval, args.k, args.ddpm_timesteps, args.seed,
                         genlab_set, args.peers_from_results, genlab_train)
        print_table([{"task": g["task"], "peer": lib, "seed": g["seed"], "budget_s": g["budget_s"],
                      "unit": g["unit"], "genlab": g["library"], **c, "genlab_best_nll": g["best_nll"],
                      "load_start": g["load_start"], "load_end": g["load_end"]}
                     for g in rows if g["library"].startswith("genlab") for lib, c in g["vs"].items()],
                    ["task", "peer", "seed", "budget_s", "peer_nll", "unit", "genlab", "genlab_s", "ratio",
                     "genlab_best_nll", "load_start", "load_end"])
        write_results("time_to_quality", rows, "python -m bench.time_to_quality " +
                      " ".join(argv if argv is not None else sys.argv[1:]), key=("task", "library", "seed", "budget_s"))


if __name__ == "__main__":
    main()
