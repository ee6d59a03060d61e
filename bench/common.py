"""Shared pieces of the benchmarks: fit a family on splits, score it, print a table, write JSON."""
from __future__ import annotations

import json
import platform
import time
from datetime import date
from pathlib import Path

import torch

from genlab.data import Splits, load_dataset, split
from genlab.metrics import bits_per_dim, nll
from genlab import make
from genlab.registry import get_family
from genlab.train import TrainConfig, Trainer

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    return f"{platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}, {platform.platform()}"


def data_splits(name: str, n: int | None = None, seed: int = 0) -> Splits:
    return split(load_dataset(name, seed=seed, n=n), seed=seed)


def fit_and_score(family: str, splits: Splits, config: dict | None = None, seed: int = 0, **train) -> dict:
    """Train with the one trainer (early stopping on validation), score the test split."""
    model = make(family, splits.train.spec, seed=seed, **(config or {}))
    cfg = TrainConfig(seed=seed, device="cpu", **{"progress": False, **train}).for_family(get_family(family))
    t0 = time.perf_counter()
    tr = Trainer(model, cfg)
    tr.fit(splits.train.x, splits.train.y, splits.val.x, splits.val.y)
    seconds = time.perf_counter() - t0
    e = nll(model, splits.test.x)
    b = bits_per_dim(e, model.spec.dim)
    return {"family": family, "config": config or {}, "test_nll": e.value, "test_nll_se": e.stderr,
            "bits_per_dim": b.value, "bits_per_dim_se": b.stderr, "n_test": e.n, "train_seconds": seconds,
            "steps": tr.step, "stop_reason": tr.stop_reason,
            "parameters": sum(p.numel() for p in model.parameters())}


def print_table(rows: list[dict], cols: list[str]) -> None:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("-|-".join("-" * w for w in widths))
    for x in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(x, widths)))


def write_results(name: str, rows: list[dict], command: str, key: tuple[str, ...] = ("family",)) -> Path:
    """Write rows to bench/results/NAME.json, replacing earlier rows with the same key (so that
    partial runs, e.g. one toy, update the file instead of erasing the others)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    stamp = {"command": command, "machine": machine(), "date": str(date.today())}
    new = [{**r, **stamp} for r in rows]
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    keys = {tuple(r.get(k) for k in key) for r in new}
    merged = [r for r in old if tuple(r.get(k) for k in key) not in keys] + new
    path.write_text(json.dumps({"rows": merged}, indent=2))
    print(f"\nwrote {path}")
    return path
