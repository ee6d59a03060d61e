"""Bernoulli RBMs on binarized digits and MNIST-5k beside scikit-learn's BernoulliRBM.

    .venv/bin/python -m bench.rbm                 # digits (H = 20, 100) and mnist5k (H = 20)
    .venv/bin/python -m bench.rbm --quick         # digits only
    .venv/bin/python -m bench.rbm --digits        # the family's defaults on the 17-level digits

Both are trained with the same budget (epochs, batch size, hidden units; genlab PCD-1 with Adam,
sklearn PCD-1 with its SGD) and scored by the same estimator: test NLL = mean free energy +
log Z, with log Z exact (enumeration of 2^H hidden states) for H = 20 and AIS (Salakhutdinov &
Murray 2008 schedule, 100 runs) otherwise; for H = 20 the AIS estimate is shown next to the
exact value. sklearn's own figure, the pseudo-likelihood, is reported as it gives it.

``--digits``: the defaults as `genlab compare --data digits` trains them (level-valued visible
units on the 17 grey levels, its default epochs, one thread), scored by `genlab.evaluate` with
compare's settings (held-out NLL with log Z by AIS, classifier-FID beside its floor, precision /
recall), the sample grid saved to ``bench/results/rbm_digits_samples.png``; then log Z of the
same model by AIS with 1,000 steps (the evaluation's) against 10,000 steps, and, for an
``H = 20`` model trained alike, AIS with 1,000 steps against the exact log Z.
"""
from __future__ import annotations

import os
import sys
import time

import torch

from bench.common import print_table, write_results
from genlab.data import load_dataset
from genlab.data.spec import DataSpec, Kind
from genlab.metrics.likelihood import mean_se
from genlab.models.rbm import RBM, RBMConfig
from genlab.train import TrainConfig, Trainer


def binarized(name: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    ds = load_dataset(name)
    x = ds.x.reshape(len(ds), -1)
    x = (x >= (ds.spec.levels - 1) / 2).float()  # threshold at half the grey scale
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = len(x) // 5
    return x[perm[n_test:]], x[perm[:n_test]]


def score(model: RBM, test: torch.Tensor, n_betas: int) -> dict:
    out = {}
    with torch.no_grad():
        free = model.free_energy(test.double().to(model.W.dtype)).double()
    if model.config.hidden <= model.config.exact_max_hidden:
        exact, _ = model.log_partition("exact")
        out["test_nll_exact"] = mean_se(free + exact.value).value
    t0 = time.perf_counter()
    ais, _ = model.log_partition("ais", steps=n_betas, chains=100, generator=torch.Generator().manual_seed(1))
    nll = mean_se(free + ais.value)
    out.update({"test_nll_ais": nll.value, "test_nll_se": nll.stderr, "log_z_ais_se": ais.stderr,
                "ais_seconds": time.perf_counter() - t0})
    return out


def run(name: str, hidden: int, epochs: int, n_betas: int, batch: int = 100) -> list[dict]:
    from sklearn.neural_network import BernoulliRBM
    train, test = binarized(name)
    D = train.shape[1]
    spec = DataSpec((D,), Kind.BINARY)
    model = RBM(spec, RBMConfig(hidden=hidden, persistent=True, chains=batch))
    t0 = time.perf_counter()
    Trainer(model, TrainConfig(epochs=epochs, batch_size=batch, lr=1e-2, patience=None, progress=False,
                               device="cpu", seed=0)).fit(train)
    ours_s = time.perf_counter() - t0
    rows = [{"data": name, "model": f"genlab rbm H={hidden}", "epochs": epochs, "fit_seconds": ours_s,
             **score(model.double(), test, n_betas)}]
    sk = BernoulliRBM(n_components=hidden, learning_rate=0.05, batch_size=batch, n_iter=epochs, random_state=0)
    t0 = time.perf_counter()
    sk.fit(train.numpy())
    sk_s = time.perf_counter() - t0
    twin = RBM(spec, RBMConfig(hidden=hidden)).double()  # sklearn's weights in a genlab RBM, to score alike
    with torch.no_grad():
        twin.W.copy_(torch.from_numpy(sk.components_.T))
        twin.b.copy_(torch.from_numpy(sk.intercept_visible_))
        twin.c.copy_(torch.from_numpy(sk.intercept_hidden_))
        twin.base.copy_(model.base)  # the same base-rate AIS start (data statistics only)
    rows.append({"data": name, "model": f"sklearn BernoulliRBM H={hidden}", "epochs": epochs, "fit_seconds": sk_s,
                 "sklearn_pseudo_ll": float(sk.score_samples(test.numpy()).mean()), **score(twin, test, n_betas)})
    return rows


def defaults_on_digits(family: str, png: str, *, seed: int = 0, **config) -> tuple[dict, object]:
    """Train ``family`` with its defaults (plus ``config``) on digits as `genlab compare` does, but
    for its default epochs instead of a wall-clock budget; evaluate with compare's settings; save
    the first 64 samples to ``png``. Returns (row, model)."""
    from genlab import make
    from genlab.evaluate import EvalSettings, evaluate
    from genlab.registry import get_family
    from genlab.report.figures import save_samples
    from .common import data_splits

    s = data_splits("digits", seed=seed)
    model = make(family, s.train.spec, seed=seed, **config)
    cfg = TrainConfig(seed=seed, device="cpu", progress=False, threads=1).for_family(get_family(family))
    t0 = time.perf_counter()
    tr = Trainer(model, cfg)
    tr.fit(s.train.x, s.train.y, s.val.x, s.val.y)
    seconds, load = time.perf_counter() - t0, os.getloadavg()[0]
    keep: dict = {}
    t1 = time.perf_counter()
    ev = evaluate(model, s.train, s.test, settings=EvalSettings(fid_min_examples=180, seed=seed), keep=keep,
                  data_name="digits", classifier_cache=None)
    m, floor = ev["metrics"], ev["floor"]
    if png:
        save_samples(keep["samples"][:64], model.spec, png, title=f"{family} samples (defaults, {tr.step} steps)")

    def v(d: dict | None) -> float | None:
        return None if d is None else d.get("value")

    row = {"data": "digits", "model": f"genlab {family} defaults" + (f" {config}" if config else ""),
           "epochs": tr.epoch, "steps": tr.step, "fit_seconds": seconds, "steps_per_minute": 60 * tr.step / seconds,
           "load_1min": load, "eval_seconds": time.perf_counter() - t1, "nll_nats": v(m.get("nll_nats")),
           "bits_per_dim": v(m.get("bits_per_dim")), "nll_is": m.get("nll_is"),
           "log_z": m.get("log_partition"), "nll_seconds": ev["seconds"].get("nll"),
           "fid": v(m.get("classifier_fid")), "fid_floor": v(floor.get("classifier_fid")),
           "precision": v(m.get("precision")), "recall": v(m.get("recall")), "coverage": v(m.get("coverage")),
           "sampling_seconds_2000": ev["seconds"].get("sampling_speed"), "not_computed": ev["not_computed"]}
    return row, model


def log_z_check(model, steps: tuple[int, ...], chains: int | None = None) -> dict:
    """log Z of ``model`` by AIS with each number of ``steps`` (seed 1): value, stderr, seconds."""
    out = {}
    for k in steps:
        t0 = time.perf_counter()
        est, _ = model.log_partition("ais", steps=k, chains=chains, generator=torch.Generator().manual_seed(1))
        out[f"log_z_ais_{k}"] = est.value
        out[f"log_z_ais_{k}_se"] = est.stderr
        out[f"log_z_ais_{k}_seconds"] = time.perf_counter() - t0
    return out


def digits_defaults() -> list[dict]:
    row, model = defaults_on_digits("rbm", "bench/results/rbm_digits_samples.png")
    row.update(log_z_check(model, (1000, 10_000)))
    small, model = defaults_on_digits("rbm", "", hidden=20)
    exact, _ = model.log_partition("exact")
    small.update(log_z_exact=exact.value, **log_z_check(model, (1000,)))
    return [row, small]


def main() -> None:
    torch.set_num_threads(1)
    if "--digits" in sys.argv:
        rows = digits_defaults()
        cols = ["model", "steps", "fit_seconds", "load_1min", "bits_per_dim", "nll_nats", "fid", "fid_floor",
                "precision", "recall", "log_z_exact", "log_z_ais_1000", "log_z_ais_1000_se",
                "log_z_ais_1000_seconds", "log_z_ais_10000", "log_z_ais_10000_se"]
        print_table(rows, cols)
        write_results("rbm", rows, "python -m bench.rbm --digits", key=("data", "model"))
        return
    quick = "--quick" in sys.argv
    rows = run("digits", 20, 50, 10_000) + run("digits", 100, 50, 10_000)
    if not quick:
        rows += run("mnist5k", 20, 20, 10_000)
    cols = ["data", "model", "epochs", "fit_seconds", "test_nll_exact", "test_nll_ais", "test_nll_se",
            "log_z_ais_se", "ais_seconds", "sklearn_pseudo_ll"]
    print_table(rows, cols)
    write_results("rbm", rows, "python -m bench.rbm " + " ".join(sys.argv[1:]), key=("data", "model"))


if __name__ == "__main__":
    main()
