"""The rbm's defaults across seeds on binarized MNIST-5k, beside independent pixels.

    python -m bench.rbm_seeds [--seeds 0,1,2] [--set hidden=256,lr=0.01] [--name defaults]

Each seed: ``load_dataset("mnist5k:binary", seed=s)`` split 80/10/10 from the seed, the rbm
trained by the one trainer with the family's defaults (epochs, batch, learning rate, schedule and
validation: what ``genlab train rbm --data mnist5k:binary --seed s`` does), scored on the test
split as ``genlab eval`` scores it (log Z by AIS with eval's 1,000 steps; its standard error is
reported, also where eval would refuse an estimate above 0.5 nats). ``--set`` overrides rbm
settings or trainer settings (``lr``, ``epochs``, ``batch_size``, ``lr_schedule``,
``weight_decay``, ``grad_clip``). The baseline: independent Bernoulli pixels fitted on the same
training split (frequencies smoothed by half a count), test NLL in nats.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import torch

from genlab import make
from genlab.data import load_dataset, split
from genlab.registry import get_family
from genlab.train import TrainConfig, Trainer

from .common import print_table, write_results

TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def independent_pixels_nll(train: torch.Tensor, test: torch.Tensor) -> float:
    """Test NLL (nats) of independent Bernoulli pixels fitted on ``train`` (half-count smoothing)."""
    x, t = train.reshape(len(train), -1).double(), test.reshape(len(test), -1).double()
    p = (x.sum(0) + 0.5) / (len(x) + 1.0)
    return float(-(t * p.log() + (1 - t) * (1 - p).log()).sum(1).mean())


def run(seed: int, overrides: dict) -> dict:
    s = split(load_dataset("mnist5k:binary", seed=seed), seed=seed)
    model_set = {k: v for k, v in overrides.items() if k not in TRAIN_FIELDS}
    train_set = {k: v for k, v in overrides.items() if k in TRAIN_FIELDS}
    model = make("rbm", s.train.spec, seed=seed, **model_set)
    cfg = TrainConfig(seed=seed, device="cpu", progress=False, threads=1, **train_set).for_family(get_family("rbm"))
    vals: list = []
    score = model.val_loss
    model.val_loss = lambda xv, yv=None: vals.append(score(xv, yv)) or vals[-1]  # each epoch's figure
    tr = Trainer(model, cfg)
    t0 = time.perf_counter()
    tr.fit(s.train.x, s.train.y, s.val.x, s.val.y)
    fit_s, load = time.perf_counter() - t0, os.getloadavg()[0]
    t1 = time.perf_counter()
    # eval's log Z (AIS, 1,000 steps, the family's chains), reported with its error even where eval
    # would refuse it as unconverged (standard error above 0.5 nats)
    log_z, how = model.log_partition(steps=1000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        free = model.energy(s.test.x).double()
    return {"seed": seed, "settings": overrides, "steps": tr.step, "epochs": tr.epoch,
            "best_val": tr.best_val, "val_by_epoch": vals, "stop": str(tr.stop_reason),
            "test_nll": float(free.mean()) + log_z.value, "test_nll_se": float(free.std() / len(free) ** 0.5),
            "log_z": log_z.value, "log_z_se": log_z.stderr, "log_z_method": how,
            "independent_pixels_nll": independent_pixels_nll(s.train.x, s.test.x),
            "fit_seconds": fit_s, "eval_seconds": time.perf_counter() - t1, "load_1min": load}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--set", default="", help="KEY=VALUE,... (JSON values) for rbm or trainer settings")
    p.add_argument("--name", default="defaults", help="row label in bench/results/rbm_seeds.json")
    a = p.parse_args()
    torch.set_num_threads(1)
    overrides = {k: json.loads(v) for k, v in (kv.split("=") for kv in filter(None, a.set.split(",")))}
    rows = []
    for seed in map(int, a.seeds.split(",")):
        r = {"name": a.name, **run(seed, overrides)}
        print(json.dumps(r, default=str), flush=True)
        rows.append(r)
    print_table(rows, ["name", "seed", "steps", "epochs", "best_val", "test_nll", "test_nll_se",
                       "log_z_se", "independent_pixels_nll", "fit_seconds", "load_1min"])
    nll = [r["test_nll"] for r in rows]
    print(f"spread (max - min) {max(nll) - min(nll):.2f} nats over seeds {a.seeds}")
    write_results("rbm_seeds", rows, f"python -m bench.rbm_seeds --seeds {a.seeds} --set '{a.set}' --name {a.name}",
                  key=("name", "seed"))


if __name__ == "__main__":
    main()
