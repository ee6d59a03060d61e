"""genlab beside the peer libraries on the same model, data, batch size and number of steps.

    python -m bench.speed.peers [--models realnvp,maf,nsf,gmm,kde] [--data moons,digits] [--repeats 3] [--steps 512]

Flows (realnvp, maf, nsf; moons: 20,000 points, batch 500; digits: 1,797 8x8 images, 64 values,
batch 256; 80/10/10 splits): genlab's one trainer (no validation, constant lr 1e-3, its default
gradient clipping) beside each peer's idiomatic loop (shuffled tensor slices,
``-log_prob(x).mean()``, Adam lr 1e-3), both ``--steps`` steps with the same coupling / MADE
networks (bench/speed/peer_models.py). On digits the peers get genlab's uniform dequantization and
standardization (and its log-determinant), so every NLL is of the same discrete data.
"genlab+compile" is genlab with ``TrainConfig(compile=True)``; its rate excludes the first two
(compiling) steps, whose extra time is reported as ``compile_s``. Every timed run is a fresh
subprocess with one torch thread, and the runs are interleaved (genlab, peer A, peer B, genlab,
...) so that a shared machine's load falls on all sides alike; the table gives the median of
``--repeats`` runs. Peak memory is the growth of ``ru_maxrss`` over training.

gmm / kde (moons, 10,000 training points): genlab's fit beside scikit-learn's GaussianMixture
(128 full-covariance components, initialised with genlab's k-means init, the same number of EM
iterations, equal per-example log-likelihood checked) and KernelDensity (bandwidth chosen from the
same 20 candidates by validation likelihood; both on genlab's standardized points), all in float64.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import statistics
import sys
import time

import torch

from ..common import data_splits, print_table, write_results
from .peer_models import PEERS, adam_loop
from .timing import interleaved_runs

FLOW_CONFIG = {"realnvp": {"n_layers": 12, "hidden": 128, "depth": 2}, "maf": {"n_layers": 5, "hidden": 128, "depth": 2},
               "nsf": {"n_layers": 6, "hidden": 128, "depth": 2}}
GENLAB_EXTRA = {"realnvp": {"net": "mlp"}}  # digits too: the peers' coupling nets are MLPs on 64 values


def build_genlab(model_name: str, spec, seed: int):
    """genlab's flow for the comparison: unconditional, as the peers are (digits carries labels,
    and a flow built on a labelled spec feeds a label embedding to every conditioner)."""
    from genlab import make
    return make(model_name, dataclasses.replace(spec, num_classes=None), seed=seed, **FLOW_CONFIG[model_name] | GENLAB_EXTRA.get(model_name, {}))
# data set -> (n points (None: all), batch size, samples drawn for the sampling time)
FLOW_DATA = {"moons": (20000, 500, 10000), "digits": (None, 256, 2000)}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_flow(model_name: str, lib: str, data: str, steps: int, seed: int) -> dict:
    """One timed training run (called in a fresh subprocess). ``lib`` "genlab+compile" is genlab
    with ``TrainConfig(compile=True)``: its rate is taken after the first two steps (which compile)
    and the compile time is reported apart."""
    torch.set_num_threads(1)
    n, batch, n_samples = FLOW_DATA[data]
    s = data_splits(data, n=n)
    x, x_test = s.train.x, s.test.x
    cfg = FLOW_CONFIG[model_name]
    per_epoch = len(x) // batch
    epochs = math.ceil(steps / per_epoch)
    compile_s = None
    if lib.startswith("genlab"):
        from genlab.registry import get_family
        from genlab.train import TrainConfig, Trainer
        model = build_genlab(model_name, s.train.spec, seed)
        tc = TrainConfig(seed=seed, device="cpu", batch_size=batch, lr=1e-3,
                          lr_schedule="constant", patience=None, progress=False, epochs=epochs,
                          compile=lib == "genlab+compile").for_family(get_family(model_name))
        marks: list[float] = []
        trainer = Trainer(model, tc, callbacks=[lambda t, r: marks.append(time.perf_counter())])
        rss0 = _maxrss_mb()  # the trainer is built outside the timer, like the peers' optimizers
        t0 = time.perf_counter()  # (the first torch.optim.Adam in a process imports torch._dynamo: ~3 s)
        trainer.fit(x[: per_epoch * batch])
        train_s = time.perf_counter() - t0
        done = epochs * per_epoch
        if lib == "genlab+compile":  # steady rate after the two compiling steps
            compile_s = marks[1] - t0 - 2 * (train_s - (marks[1] - t0)) / (done - 2)
            train_s, done = marks[-1] - marks[1], done - 2
        def log_prob(v: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
            return model.log_prob(v, generator=g)

        def sample(k: int) -> torch.Tensor:
            return model.sample(k, generator=torch.Generator().manual_seed(1))
        params = sum(p.numel() for p in model.parameters())
    else:
        from genlab.data.preprocess import Preprocess, default_preprocess
        # discrete data (digits): the same uniform dequantization + standardization genlab applies,
        # with its log-determinant, so that both sides report NLL of the same data; moons: none
        pre = default_preprocess(s.train.spec) if s.train.spec.is_discrete else Preprocess()
        pre.fit(x)
        torch.manual_seed(seed)
        module, peer_log_prob, peer_sample = PEERS[model_name][lib](s.train.spec.dim, **cfg)
        params = sum(p.numel() for p in module.parameters())

        def log_prob(v: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
            z, logdet = pre(v, g)
            return peer_log_prob(z.flatten(1)) + logdet

        def sample(k: int) -> torch.Tensor:
            return pre.inverse(peer_sample(k).reshape(k, *s.train.spec.event_shape))
        g = torch.Generator().manual_seed(seed)
        rss0 = _maxrss_mb()
        done, train_s = adam_loop(module.parameters(), lambda xb: -log_prob(xb, g).mean(), x, batch, epochs, g)
        module.eval()
    peak = _maxrss_mb() - rss0
    with torch.no_grad():
        t0 = time.perf_counter()
        sample(n_samples)
        sample_s = time.perf_counter() - t0
        nll = -log_prob(x_test, torch.Generator().manual_seed(2)).mean().item()
    return {"steps": done, "examples_per_s": done * batch / train_s, "train_s": train_s, "compile_s": compile_s,
            "samples_per_s": n_samples / sample_s, "peak_rss_mb": peak, "test_nll": nll, "parameters": params}


def ratios(med: dict[str, dict], base: str, rate_keys: tuple[str, ...], extra: dict) -> list[dict]:
    """One row per library; peers get ``<rate>_ratio`` = base / peer for each rate (higher: base faster)."""
    rows = []
    for lib, r in med.items():
        row = {**extra, "library": lib, **r}
        if lib != base and base in med:
            for k in rate_keys:
                if r.get(k) and med[base].get(k):
                    row[f"{k}_ratio"] = med[base][k] / r[k]
        rows.append(row)
    return rows


def flows(models: list[str], datas: list[str], repeats: int, steps: int, compiled: list[str]) -> list[dict]:
    rows = []
    for data in datas:
        for m in models:
            libs = ["genlab", *(["genlab+compile"] if m in compiled else []), *PEERS[m]]
            jobs = {lib: ["bench.speed.peers", "--one", json.dumps([m, lib, data, steps])] for lib in libs}
            med = interleaved_runs(jobs, repeats, f"{m} {data}")
            for row in ratios(med, "genlab", ("examples_per_s", "samples_per_s"),
                              {"model": m, "data": data, "batch": FLOW_DATA[data][1]}):
                if row["library"] != "genlab" and "genlab" in med:
                    row["nll_diff"] = med["genlab"]["test_nll"] - row["test_nll"]
                rows.append(row)
    return rows


def gmm_vs_sklearn(n_components: int, iters: int, repeats: int) -> list[dict]:
    """Same init, same number of EM iterations; equal log-likelihood per example is checked."""
    from sklearn.mixture import GaussianMixture
    from genlab.registry import get_family
    from genlab import make
    from genlab.train import TrainConfig, Trainer
    s = data_splits("moons", n=12500)  # 10,000 training points
    x = s.train.x.double()  # scikit-learn works in float64: genlab too here, to compare to 1e-6
    times: dict[str, list[float]] = {"genlab": [], "genlab_em": [], "sklearn": []}
    for _ in range(repeats):
        model = make("gmm", s.train.spec, seed=0, n_components=n_components, tol=-1e300).double()  # finite (validated), never met
        t0 = time.perf_counter()
        model.setup(x)
        setup_s = time.perf_counter() - t0
        w, mu, L = model.weights.clone(), model.means.clone(), model.scale_tril.clone()  # fit() updates in place
        z = model.pre(x, None)[0].numpy()
        prec = torch.cholesky_inverse(L).numpy()
        tc = TrainConfig(seed=0, device="cpu", epochs=iters, patience=None, progress=False).for_family(get_family("gmm"))
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
    from genlab import make
    from genlab.train import TrainConfig, Trainer
    s = data_splits("moons", n=12500)
    xt, xv, xs = s.train.x.double(), s.val.x.double(), s.test.x.double()
    fit: dict[str, list[float]] = {"genlab": [], "sklearn": []}
    for _ in range(repeats):
        model = make("kde", s.train.spec, seed=0).double()
        t0 = time.perf_counter()
        Trainer(model, TrainConfig(device="cpu", progress=False)).fit(xt, None, xv)
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
    p.add_argument("--models", default="realnvp,maf,nsf,gmm,kde")
    p.add_argument("--data", default="moons,digits", help="flows: moons and/or digits")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=512, help="training steps per flow run")
    p.add_argument("--compile", default="realnvp,maf",
                   help="flows also timed with TrainConfig(compile=True) (nsf compiles for ~3 min)")
    p.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: one timed flow run, JSON out
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(run_flow(*json.loads(args.one[0]), int(args.one[1]))))
        return
    torch.set_num_threads(1)
    models = args.models.split(",")
    rows = flows([m for m in models if m in PEERS], args.data.split(","), args.repeats, args.steps,
                 args.compile.split(","))
    if rows:
        print_table(rows, ["model", "data", "library", "parameters", "examples_per_s", "examples_per_s_ratio",
                           "compile_s", "samples_per_s", "samples_per_s_ratio", "peak_rss_mb", "test_nll", "nll_diff"])
    classic = []
    if "gmm" in models:
        classic += gmm_vs_sklearn(128, 100, args.repeats)
    if "kde" in models:
        classic += kde_vs_sklearn(args.repeats)
    if classic:
        print()
        print_table(classic, ["model", "library", "fit_s", "em_only_s", "fit_ratio", "em_ratio", "score_s",
                              "score_ratio", "train_ll", "test_nll", "bandwidth", "max_abs_ll_diff"])
    write_results("peers", rows + classic, "python -m bench.speed.peers " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("model", "data", "library"))


if __name__ == "__main__":
    main()
