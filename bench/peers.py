"""genlab beside the peer libraries on the same model, data, batch size and number of steps.

    python -m bench.peers [--models realnvp,maf,gmm,kde] [--repeats 3] [--steps 512]

Flows (moons, 20,000 points, 80/10/10 split): genlab's one trainer (no validation, constant
lr 1e-3, its default gradient clipping) beside each peer's idiomatic loop (shuffled tensor slices,
``-log_prob(x).mean()``, Adam lr 1e-3), both ``--steps`` steps of ``--batch`` examples with the same
coupling networks (bench/peer_models.py). Every timed run is a fresh subprocess with one torch
thread, and the runs are interleaved (genlab, peer A, peer B, genlab, ...) so that a shared
machine's load falls on both sides alike; the table gives the median of ``--repeats`` runs.
Peak memory is the growth of ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` over training.

gmm / kde (moons, 10,000 training points): genlab's fit beside scikit-learn's GaussianMixture
(128 full-covariance components, initialised with genlab's k-means init, the same number of EM
iterations, equal per-example log-likelihood checked) and KernelDensity (bandwidth chosen from the
same 20 candidates by validation likelihood; both on genlab's standardized points), all in float64.
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time

import torch

from .common import data_splits, print_table, write_results
from .peer_models import PEERS

FLOW_CONFIG = {"realnvp": {"n_layers": 12, "hidden": 128, "depth": 2}, "maf": {"n_layers": 5, "hidden": 128, "depth": 2}}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_flow(model_name: str, lib: str, steps: int, batch: int, seed: int) -> dict:
    """One timed training run (called in a fresh subprocess)."""
    torch.set_num_threads(1)
    s = data_splits("moons", n=20000)
    x, x_test = s.train.x, s.test.x
    cfg = FLOW_CONFIG[model_name]
    per_epoch = len(x) // batch
    if lib == "genlab":
        from genlab.registry import get_family
        from genlab.runs import build_model
        from genlab.train import Trainer, train_config
        model = build_model(model_name, s.train.spec, cfg, seed)
        tc = train_config(get_family(model_name), seed=seed, device="cpu", batch_size=batch, lr=1e-3,
                          lr_schedule="constant", patience=None, progress=False, epochs=math.ceil(steps / per_epoch))
        trainer = Trainer(model, tc)  # outside the timer, like the peers' optimizers (the first
        rss0 = _maxrss_mb()             # torch.optim.Adam in a process imports torch._dynamo: ~3 s)
        t0 = time.perf_counter()
        trainer.fit(x[: per_epoch * batch])
        train_s = time.perf_counter() - t0
        done = tc.epochs * per_epoch
        log_prob, sample = model.log_prob, lambda n: model.sample(n, generator=torch.Generator().manual_seed(1))
    else:
        torch.manual_seed(seed)
        module, log_prob, sample = PEERS[model_name][lib](2, **cfg)
        opt = torch.optim.Adam(module.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(seed)
        rss0 = _maxrss_mb()
        t0 = time.perf_counter()
        done = 0
        while done < math.ceil(steps / per_epoch) * per_epoch:
            order = torch.randperm(len(x), generator=g)
            for b in range(per_epoch):
                loss = -log_prob(x[order[b * batch:(b + 1) * batch]]).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                done += 1
        train_s = time.perf_counter() - t0
        module.eval()
    peak = _maxrss_mb() - rss0
    with torch.no_grad():
        t0 = time.perf_counter()
        sample(10000)
        sample_s = time.perf_counter() - t0
        nll = -log_prob(x_test).mean().item()
    return {"steps": done, "examples_per_s": done * batch / train_s, "train_s": train_s,
            "samples_per_s": 10000 / sample_s, "peak_rss_mb": peak, "test_nll": nll}


def flows(models: list[str], repeats: int, steps: int, batch: int) -> list[dict]:
    rows = []
    for m in models:
        libs = ["genlab", *PEERS[m]]
        runs: dict[str, list[dict]] = {lib: [] for lib in libs}
        for rep in range(repeats):
            for lib in libs:  # interleaved: genlab, peer, peer, genlab, ...
                cmd = [sys.executable, "-m", "bench.peers", "--one", json.dumps([m, lib, steps, batch, rep])]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode:
                    print(f"{m}/{lib} failed:\n{out.stderr[-2000:]}", flush=True)
                    runs.pop(lib, None)
                    libs.remove(lib)
                    break
                r = json.loads(out.stdout.strip().splitlines()[-1])
                runs[lib].append(r)
                print(f"{m:8s} {lib:9s} rep {rep}: {r['examples_per_s']:8.0f} ex/s  NLL {r['test_nll']:.4f}", flush=True)
        med = {lib: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for lib, rs in runs.items() if rs}
        for lib, r in med.items():
            row = {"model": m, "library": lib, "batch": batch, "repeats": len(runs[lib]), **r}
            if lib != "genlab":
                g = med["genlab"]
                row |= {"train_ratio": g["examples_per_s"] / r["examples_per_s"],
                        "sample_ratio": g["samples_per_s"] / r["samples_per_s"],
                        "nll_diff": g["test_nll"] - r["test_nll"]}
            rows.append(row)
    return rows


def gmm_vs_sklearn(n_components: int, iters: int, repeats: int) -> list[dict]:
    """Same init, same number of EM iterations; equal log-likelihood per example is checked."""
    from sklearn.mixture import GaussianMixture
    from genlab.registry import get_family
    from genlab.runs import build_model
    from genlab.train import Trainer, train_config
    s = data_splits("moons", n=12500)  # 10,000 training points
    x = s.train.x.double()  # scikit-learn works in float64: genlab too here, to compare to 1e-6
    times: dict[str, list[float]] = {"genlab": [], "genlab_em": [], "sklearn": []}
    for _ in range(repeats):
        model = build_model("gmm", s.train.spec, {"n_components": n_components, "tol": -math.inf}, 0).double()
        t0 = time.perf_counter()
        model.setup(x)
        setup_s = time.perf_counter() - t0
        w, mu, L = model.weights.clone(), model.means.clone(), model.scale_tril.clone()  # fit() updates in place
        z = model.pre(x, None)[0].numpy()
        prec = torch.cholesky_inverse(L).numpy()
        tc = train_config(get_family("gmm"), seed=0, device="cpu", epochs=iters, patience=None, progress=False)
        t0 = time.perf_counter()
        Trainer(model, tc).fit(x)  # runs setup (k-means) again, then `iters` EM steps
        times["genlab"].append(time.perf_counter() - t0)
        times["genlab_em"].append(times["genlab"][-1] - setup_s)
        sk = GaussianMixture(n_components, covariance_type="full", tol=0.0, reg_covar=model.config.reg,
                             max_iter=iters, weights_init=w.numpy(), means_init=mu.numpy(), precisions_init=prec)
        t0 = time.perf_counter()
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tol=0 never "converges": a fixed iteration count
            sk.fit(z)
        times["sklearn"].append(time.perf_counter() - t0)
    logdet = model.pre(x, None)[1]
    ll_g = model.log_prob(x)
    ll_s = torch.from_numpy(sk.score_samples(z)) + logdet
    t0 = time.perf_counter()
    model.log_prob(s.test.x.double())
    score_g = time.perf_counter() - t0
    t0 = time.perf_counter()
    sk.score_samples(model.pre(s.test.x.double(), None)[0].numpy())
    score_s = time.perf_counter() - t0
    med = {k: statistics.median(v) for k, v in times.items()}
    return [{"model": "gmm", "library": "genlab", "fit_s": med["genlab"], "em_only_s": med["genlab_em"],
             "score_s": score_g, "train_ll": ll_g.mean().item(), "n": len(x), "components": n_components,
             "iters": iters, "repeats": repeats},
            {"model": "gmm", "library": "sklearn", "fit_s": med["sklearn"], "score_s": score_s,
             "train_ll": ll_s.mean().item(), "n": len(x), "components": n_components, "iters": iters,
             "repeats": repeats, "fit_ratio": med["sklearn"] / med["genlab"], "em_ratio": med["sklearn"] / med["genlab_em"],
             "max_abs_ll_diff": (ll_g - ll_s).abs().max().item()}]


def kde_vs_sklearn(repeats: int) -> list[dict]:
    """Bandwidth from the same candidates by validation likelihood, then scoring the test split."""
    from sklearn.neighbors import KernelDensity
    from genlab.registry import get_family
    from genlab.runs import build_model
    from genlab.train import Trainer, train_config
    s = data_splits("moons", n=12500)
    xt, xv, xs = s.train.x.double(), s.val.x.double(), s.test.x.double()
    fit: dict[str, list[float]] = {"genlab": [], "sklearn": []}
    for _ in range(repeats):
        model = build_model("kde", s.train.spec, {}, 0).double()
        t0 = time.perf_counter()
        Trainer(model, train_config(get_family("kde"), device="cpu", progress=False)).fit(xt, None, xv)
        fit["genlab"].append(time.perf_counter() - t0)
        z, zv = (model.pre(v, None)[0].numpy() for v in (xt, xv))
        t0 = time.perf_counter()
        scores = [KernelDensity(bandwidth=float(h)).fit(z).score_samples(zv).mean() for h in model.candidates()]
        best = float(model.candidates()[int(torch.tensor(scores).argmax())])
        kd = KernelDensity(bandwidth=best).fit(z)
        fit["sklearn"].append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ll_g = model.log_prob(xs)
    score_g = time.perf_counter() - t0
    zt, logdet = model.pre(xs, None)
    t0 = time.perf_counter()
    ll_s = torch.from_numpy(kd.score_samples(zt.numpy())) + logdet
    score_s = time.perf_counter() - t0
    fg, fs = statistics.median(fit["genlab"]), statistics.median(fit["sklearn"])
    return [{"model": "kde", "library": "genlab", "fit_s": fg, "score_s": score_g, "test_nll": -ll_g.mean().item(),
             "bandwidth": float(model.bandwidth), "repeats": repeats},
            {"model": "kde", "library": "sklearn", "fit_s": fs, "score_s": score_s, "test_nll": -ll_s.mean().item(),
             "bandwidth": best, "repeats": repeats, "fit_ratio": fs / fg, "score_ratio": score_s / score_g,
             "max_abs_ll_diff": (ll_g - ll_s).abs().max().item()}]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="realnvp,maf,gmm,kde")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=512, help="training steps per flow run")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: one timed flow run, JSON out
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(run_flow(*json.loads(args.one))))
        return
    torch.set_num_threads(1)
    models = args.models.split(",")
    rows = flows([m for m in models if m in PEERS], args.repeats, args.steps, args.batch)
    if rows:
        print_table(rows, ["model", "library", "examples_per_s", "train_ratio", "samples_per_s", "sample_ratio",
                           "peak_rss_mb", "test_nll", "nll_diff"])
    classic = []
    if "gmm" in models:
        classic += gmm_vs_sklearn(128, 100, args.repeats)
    if "kde" in models:
        classic += kde_vs_sklearn(args.repeats)
    if classic:
        print()
        print_table(classic, ["model", "library", "fit_s", "em_only_s", "fit_ratio", "em_ratio", "score_s",
                              "score_ratio", "train_ll", "test_nll", "bandwidth", "max_abs_ll_diff"])
    write_results("peers", rows + classic, "python -m bench.peers " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("model", "library"))


if __name__ == "__main__":
    main()
