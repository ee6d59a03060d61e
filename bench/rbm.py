"""Bernoulli RBMs on binarized digits and MNIST-5k beside scikit-learn's BernoulliRBM.

    .venv/bin/python -m bench.rbm                 # digits (H = 20, 100) and mnist5k (H = 20)
    .venv/bin/python -m bench.rbm --quick         # digits only

Both are trained with the same budget (epochs, batch size, hidden units; genlab PCD-1 with Adam,
sklearn PCD-1 with its SGD) and scored by the same estimator: test NLL = mean free energy +
log Z, with log Z exact (enumeration of 2^H hidden states) for H = 20 and AIS (Salakhutdinov &
Murray 2008 schedule, 100 runs) otherwise; for H = 20 the AIS estimate is shown next to the
exact value. sklearn's own figure, the pseudo-likelihood, is reported as it gives it.
"""
from __future__ import annotations

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


def main() -> None:
    torch.set_num_threads(1)
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
