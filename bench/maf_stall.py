"""maf beside zuko's and nflows' MAF at the same architecture: held-out NLL by training step.

    python -m bench.maf_stall [--runs 'genlab;zuko;nflows'] [--seeds 0,1,2] [--steps 3000]
    python -m bench.maf_stall --digits [--seeds 0] [--epochs 40]

Moons (20,000 points, 80/10/10 split from seed 0): 5 MADE affine layers of 2 x 128 SiLU units,
order reversed between layers, batch 500, Adam at a constant 1e-3, the same number of steps on
every side (whole shuffled epochs, so 94 epochs = 3,008 steps); the test NLL is taken every
``--every`` steps. genlab trains with its one trainer and maf's own trainer defaults except the
learning-rate schedule (constant, as the peers' loops) and early stopping (off); the peers with
their idiomatic loop (bench/speed/peer_models.py). Runs named ``genlab:KEY=VALUE,...`` change
maf settings (``scale_bound``, ``actnorm``, ...) or trainer ones (``grad_clip``), to find what
holds genlab back. ``--digits`` trains maf with its defaults (every default, validation and
early stopping included) on digits for ``--epochs`` and reports the test NLL.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch

from genlab import make
from genlab.metrics import nll
from genlab.registry import get_family
from genlab.train import TrainConfig, Trainer

from .common import data_splits, print_table, write_results
from .speed.peer_models import PEERS

ARCH = {"n_layers": 5, "hidden": 128, "depth": 2}
TRAIN_KEYS = {"grad_clip", "lr_schedule", "lr"}
BENCH_KEYS = {"no_actnorm", "random_last", "no_standardize"}  # ablations the bench applies to the built model


class _Identity(torch.nn.Module):
    """A flow layer that does nothing (stands in for a removed ActNorm)."""

    def forward(self, x, ctx=None):
        return x, x.new_zeros(len(x))

    def inverse(self, y, ctx=None):
        return y


def _parse(run: str) -> tuple[str, dict, dict]:
    """``genlab:scale_bound=6,grad_clip=0`` -> ("genlab", model settings, trainer settings)."""
    lib, _, opts = run.partition(":")
    model, train = {}, {}
    for kv in filter(None, opts.split(",")):
        k, v = kv.split("=")
        val = json.loads(v) if v not in ("none", "None") else None
        (train if k in TRAIN_KEYS else model)[k] = val
    return lib, model, train


def _test_nll(log_prob, x) -> float:
    with torch.no_grad():
        return float(-torch.cat([log_prob(c) for c in x.split(4096)]).mean())


def run_moons(run: str, seed: int, steps: int, every: int, batch: int = 500) -> dict:
    torch.manual_seed(seed)
    s = data_splits("moons", n=20000)
    x, x_test = s.train.x, s.test.x
    per_epoch = len(x) // batch
    epochs = math.ceil(steps / per_epoch)
    lib, mset, tset = _parse(run)
    curve: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    if lib == "genlab":
        hacks = {k: mset.pop(k) for k in BENCH_KEYS & set(mset)}
        model = make("maf", s.train.spec, seed=seed, **ARCH | mset)
        if hacks.get("no_actnorm"):
            from genlab.nn.flows import ActNorm
            model.layers = torch.nn.ModuleList(_Identity() if isinstance(m, ActNorm) else m for m in model.layers)
        if hacks.get("random_last"):  # torch's default init of each MADE's output layer instead of zeros
            for m in model.layers:
                if hasattr(m, "made"):
                    m.made.out.reset_parameters()
        if hacks.get("no_standardize"):
            from genlab.data.preprocess import Preprocess
            model.pre = Preprocess()
        tc = TrainConfig(seed=seed, device="cpu", batch_size=batch, lr_schedule="constant", patience=None,
                         progress=False, epochs=epochs, **tset).for_family(get_family("maf"))

        def mark(tr, rec):
            if tr.step % every == 0:
                model.eval()
                curve.append((tr.step, _test_nll(model.log_prob, x_test)))
                model.train()
        tr = Trainer(model, tc, callbacks=[mark])
        tr.fit(x[: per_epoch * batch])
        n_steps, params = tr.step, sum(p.numel() for p in model.parameters())
        final = _test_nll(model.log_prob, x_test)
    else:
        module, log_prob, _ = PEERS["maf"][lib](2, **ARCH)
        params = sum(p.numel() for p in module.parameters())
        opt = torch.optim.Adam(module.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(seed)
        n_steps = 0
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=g)
            for b in range(per_epoch):
                loss = -log_prob(x[order[b * batch:(b + 1) * batch]]).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                n_steps += 1
                if n_steps % every == 0:
                    curve.append((n_steps, _test_nll(log_prob, x_test)))
        final = _test_nll(log_prob, x_test)
    return {"run": run, "data": "moons", "seed": seed, "steps": n_steps, "parameters": params,
            "test_nll": final, "curve": curve, "seconds": time.perf_counter() - t0}


def run_digits(run: str, seed: int, epochs: int) -> dict:
    """maf with its defaults (plus ``run``'s settings) on digits, ``epochs`` epochs."""
    _, mset, tset = _parse(run)
    s = data_splits("digits")
    model = make("maf", s.train.spec, seed=seed, **mset)
    tc = TrainConfig(seed=seed, device="cpu", progress=False, epochs=epochs, **tset).for_family(get_family("maf"))
    tr = Trainer(model, tc)
    t0 = time.perf_counter()
    tr.fit(s.train.x, s.train.y, s.val.x, s.val.y)
    return {"run": run, "data": "digits", "seed": seed, "steps": tr.step, "epochs": epochs,
            "parameters": sum(p.numel() for p in model.parameters()), "test_nll": nll(model, s.test.x).value,
            "stop": str(tr.stop_reason), "seconds": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", default="genlab;zuko;nflows", help="runs separated by ;")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--every", type=int, default=500)
    p.add_argument("--digits", action="store_true", help="maf's defaults on digits instead of the moons match")
    p.add_argument("--epochs", type=int, default=40, help="--digits: epochs")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for run in a.runs.split(";"):
        for seed in map(int, a.seeds.split(",")):
            r = run_digits(run, seed, a.epochs) if a.digits else run_moons(run, seed, a.steps, a.every)
            print(json.dumps({k: v for k, v in r.items()}), flush=True)
            rows.append(r)
    print_table(rows, ["run", "data", "seed", "steps", "parameters", "test_nll", "seconds"])
    cmd = "python -m bench.maf_stall " + " ".join(f"--{k} {v!r}" for k, v in vars(a).items())
    write_results("maf_stall", rows, cmd, key=("run", "data", "seed", "steps"))


if __name__ == "__main__":
    main()
