"""Every metric a model supports, on one data set, as one JSON-able dictionary.

Generic over the registry: what a model can do is read from the protocol (``density``,
``isinstance(model, Latent | Energy | Conditional)``) and from `NotSupported` raised by its
methods; whatever cannot be computed is listed under ``not_computed`` with the reason.

Sample metrics compare ``n`` generated examples and ``n`` held-out (test) examples with the same
reference (the training set), so each model figure has a *floor* beside it: the same metric for
real held-out data, the best a model can expect at this n.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from .data import Dataset
from .metrics import bits_per_dim, mean_se, nll
from .metrics.ais_latent import ais_log_prob
from .metrics.ais_latent import check as ais_check
from .metrics.classifier import classifier_features, get_classifier
from .metrics.fid import fid
from .metrics.memorization import memorization
from .metrics.samples import density_coverage, mmd, precision_recall
from .protocol import (Conditional, Density, Energy, GenerativeModel, Latent, NotSupported, Partition,
                       takes_labels)

ERRORS = (NotImplementedError, ValueError, RuntimeError)  # NotSupported is a NotImplementedError


@dataclass
class EvalSettings:
    """Settings of `evaluate`."""

    n: int = field(default=2000, metadata={"help": "at most this many generated and held-out examples"})
    seed: int = field(default=0, metadata={"help": "seed of sampling, subsets and bootstraps"})
    fid_min_examples: int = field(default=2000, metadata={"help": "classifier-FID refuses fewer examples"})
    k_pr: int = field(default=3, metadata={"help": "neighbour rank of precision/recall"})
    k_dc: int = field(default=5, metadata={"help": "neighbour rank of density/coverage"})
    max_sample_seconds: float = field(default=60.0, metadata={"help": "sampling time cap (n is lowered)"})
    n_ref: int = field(default=5000, metadata={"help": "at most this many training examples as reference"})
    classifier: bool = field(default=True, metadata={"help": "use classifier features when labels exist"})
    ais_steps: int = field(default=0, metadata={
        "help": "annealed importance sampling with this many steps (0: off): VAEs, of log p(x) over codes "
                "(each step 6 decoder passes with gradients on 16 chains per example); energy models "
                "(rbm beyond exact enumeration, ebm beyond 2 values per example), of log Z"})
    ais_examples: int = field(default=200, metadata={"help": "held-out examples scored by AIS"})


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN / Inf floats replaced by None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def parameters(model: GenerativeModel) -> int:
    """Numbers a fitted model stores: trainable parameters and floating-point buffers (a GMM's
    means, a KDE's points)."""
    return sum(t.numel() for t in model.state_dict().values() if t.is_floating_point())


def capabilities(model: GenerativeModel) -> list[str]:
    return [n for n, c in (("latent", Latent), ("energy", Energy), ("conditional", Conditional))
            if isinstance(model, c)]


def timed_samples(model: GenerativeModel, n: int, *, condition: Tensor | None, seed: int,
                  max_seconds: float, batch: int = 500) -> tuple[Tensor, dict[str, Any]]:
    """Draw up to ``n`` samples in batches, fewer when sampling would take over ``max_seconds``.

    Returns:
        (samples (m, *event_shape), speed record: samples/s with the standard error over
        batches, m, seconds, and a note when n was lowered).
    """
    g = torch.Generator().manual_seed(seed)
    pilot = min(n, 32)
    t0 = time.perf_counter()
    out = [model.sample(pilot, condition=None if condition is None else condition[:pilot], generator=g).cpu()]
    dt = max(time.perf_counter() - t0, 1e-9)
    note = None
    if n / (pilot / dt) > max_seconds:  # plan the rest from the pilot batch's speed
        new_n = max(pilot, int(pilot / dt * max_seconds))
        if new_n < n:
            note = (f"n lowered from {n} to {new_n}: sampling runs at {pilot / dt:.3g} samples/s and "
                    f"the cap is {max_seconds:g} s")
            n = new_n
    size = min(batch, max(8, (n - pilot) // 4))  # equal batches after the warm-up, for a standard error
    counts, times, done = [pilot], [dt], pilot
    while done < n:
        k = min(size, n - done)
        c = None if condition is None else condition[done:done + k]
        t0 = time.perf_counter()
        out.append(model.sample(k, condition=c, generator=g).cpu())
        counts.append(k)
        times.append(max(time.perf_counter() - t0, 1e-9))
        done += k
    x = torch.cat(out)[:n]
    if len(counts) > 2:  # the pilot includes warm-up; rate and its spread from the equal batches
        c_, t_ = torch.tensor(counts[1:], dtype=torch.float64), torch.tensor(times[1:], dtype=torch.float64)
        rate, se = float(c_.sum() / t_.sum()), float((c_ / t_).std() / math.sqrt(len(c_)))
    else:
        rate, se = sum(counts) / sum(times), float("nan")
    speed = {"value": rate, "stderr": se, "n": done, "seconds": sum(times), "batches": len(counts)}
    if note:
        speed["note"] = note
    return x, speed


class _Recorder:
    """Collects metrics, floors and the reasons for what could not be computed."""

    def __init__(self) -> None:
        self.metrics: dict[str, Any] = {}
        self.floor: dict[str, Any] = {}
        self.not_computed: dict[str, str] = {}
        self.seconds: dict[str, float] = {}

    def run(self, names: list[str], fn: Callable[[], None], why_prefix: str = "") -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except ERRORS as e:
            for n in names:
                self.not_computed[n] = f"{why_prefix}{e}"
        self.seconds["/".join(names)] = time.perf_counter() - t0


def evaluate(model: GenerativeModel, train: Dataset, test: Dataset, *, settings: EvalSettings | None = None,
             data_name: str | None = None, verbose: bool = False,
             keep: dict[str, Tensor] | None = None) -> dict[str, Any]:
    """Every metric ``model`` supports on the held-out ``test`` set, against ``train``.

    Args:
        model: a trained model of any family (eval mode).
        train: the training set (the reference of the sample metrics and of memorization).
        test: held-out examples (NLL; the floor of the sample metrics).
        settings: `EvalSettings`.
        data_name: the data set's name (names the cached feature classifier).
        keep: if given, receives the generated samples under ``"samples"`` (for figures).
    Returns:
        JSON-able dict: family, density, capabilities, parameters, ``metrics`` (each figure with
        stderr and n), ``floor`` (held-out data under the same sample metrics), ``features``,
        ``not_computed`` {metric: reason}, ``seconds``.
    """
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small operations: a second thread costs more in synchronisation than
    try:  # it gains, and on a busy machine much more (the classifier trained 6x faster on one)
        with threadpool_limits(1):  # numpy's BLAS too (the Fréchet distance's eigen-decompositions)
            return _evaluate(model, train, test, settings or EvalSettings(), data_name, verbose, keep)
    finally:
        torch.set_num_threads(threads)


def _evaluate(model: GenerativeModel, train: Dataset, test: Dataset, s: EvalSettings, data_name: str | None,
              verbose: bool, keep: dict[str, Tensor] | None) -> dict[str, Any]:
    model.eval()
    rec = _Recorder()
    name = data_name or test.name
    res: dict[str, Any] = {"family": model.name, "data": name, "density": model.density.value,
                           "capabilities": capabilities(model), "parameters": parameters(model),
                           "n_train": len(train), "n_test": len(test), "settings": asdict(s)}

    def likelihood() -> None:
        # the unconditional density, comparable across families; log p(x | y) of conditional
        # models is reported beside it, never in its place
        if model.density is Density.UNNORMALIZED and isinstance(model, Partition):
            return normalized_energy()
        e = nll(model, test.x)
        rec.metrics["nll_nats"] = e.to_dict()
        rec.metrics["bits_per_dim"] = bits_per_dim(e, model.spec.dim).to_dict()
        bound = model.density is Density.BOUND or model.pre.lower_bound
        rec.metrics["nll_is"] = "upper bound" if bound else "exact"
        if takes_labels(model) and test.y is not None:
            rec.metrics["nll_given_label_nats"] = nll(model, test.x, condition=test.y).to_dict()

    def normalized_energy() -> None:  # log p = -E - log Z, with Z enumerated, integrated or AIS-estimated
        method = model.partition_method()
        if method == "ais" and s.ais_steps <= 0:
            raise NotSupported(f"{model.name}: log Z needs annealed importance sampling here; pass --ais-steps N "
                               "(e.g. 1000)")
        log_z, how = model.log_partition(steps=s.ais_steps if method == "ais" else None,
                                         generator=torch.Generator().manual_seed(s.seed))
        lp, _ = model.log_prob_estimate(test.x, log_z=log_z)
        if not torch.isfinite(lp).all():  # an ebm puts no mass outside its box: the NLL is then infinite
            rec.metrics["examples_outside_support"] = int((~torch.isfinite(lp)).sum())
        e = mean_se(-lp)
        rec.metrics["nll_nats"] = e.to_dict()
        rec.metrics["bits_per_dim"] = bits_per_dim(e, model.spec.dim).to_dict()
        rec.metrics["nll_is"] = {"exact": "exact", "quadrature": "exact up to quadrature error",
                                 "ais": "estimate (AIS log Z is low in expectation: optimistic)"}[how]
        rec.metrics["log_partition"] = {**log_z.to_dict(), "method": how}
    rec.run(["nll"], likelihood)  # nll_nats and bits_per_dim

    def annealed() -> None:  # a tighter (stochastic lower) bound on log p(x) than the ELBO / IWAE
        ais_check(model)
        lp = ais_log_prob(model, test.x[:s.ais_examples], steps=s.ais_steps, leapfrog=5,
                          generator=torch.Generator().manual_seed(s.seed))
        e = mean_se(-lp)
        rec.metrics["ais_nll_nats"] = e.to_dict()
        rec.metrics["ais_bits_per_dim"] = bits_per_dim(e, model.spec.dim).to_dict()
    if s.ais_steps > 0 and not isinstance(model, Partition):  # energy models spend their AIS on log Z (nll)
        rec.run(["ais"], annealed)

    g = torch.Generator().manual_seed(s.seed)
    n = min(s.n, len(test))
    held = test.subset(torch.randperm(len(test), generator=g)[:n])
    ref = train.subset(torch.randperm(len(train), generator=g)[:min(s.n_ref, len(train))])
    cond = held.y if takes_labels(model) and held.y is not None else None
    gen: dict[str, Tensor] = {}

    def sampling() -> None:
        x, speed = timed_samples(model, n, condition=cond, seed=s.seed, max_seconds=s.max_sample_seconds)
        gen["x"] = x
        if keep is not None:
            keep["samples"] = x
        rec.metrics["sampling_speed"] = speed
    rec.run(["sampling_speed"], sampling)

    sample_metrics = ["mmd", "precision", "recall", "density", "coverage", "classifier_fid", "memorization"]
    if "x" not in gen:
        why = f"no samples: {rec.not_computed['sampling_speed']}"
        rec.not_computed.update({m: why for m in sample_metrics})
    else:
        x_gen = gen["x"]
        m = len(x_gen)
        held_m = held.subset(torch.arange(m))  # the floor uses as many held-out as generated examples
        feats = _features(model, train, test, ref, held_m, x_gen, s, name, rec, res, verbose)
        f_ref, f_held, f_gen = feats

        def two_sample() -> None:
            rec.metrics["mmd"], rec.floor["mmd"] = (mmd(f_ref, f).to_dict() for f in (f_gen, f_held))
        rec.run(["mmd"], two_sample)

        def pr() -> None:
            for out, f in ((rec.metrics, f_gen), (rec.floor, f_held)):
                p, r = precision_recall(f_ref, f, k=s.k_pr)
                d, c = density_coverage(f_ref, f, k=s.k_dc)
                out.update(precision=p.to_dict(), recall=r.to_dict(), density=d.to_dict(), coverage=c.to_dict())
        rec.run(["precision", "recall", "density", "coverage"], pr)

        def frechet() -> None:
            if res["features"]["kind"] != "classifier":
                raise NotSupported(f"classifier-FID needs classifier features: {res['features']['why']}")
            rec.floor["classifier_fid"] = fid(f_ref, f_held, min_examples=s.fid_min_examples, seed=s.seed).to_dict()
            rec.metrics["classifier_fid"] = fid(f_ref, f_gen, min_examples=s.fid_min_examples, seed=s.seed).to_dict()
        rec.run(["classifier_fid"], frechet)

        def memo() -> None:
            mem = memorization(x_gen, train.x, held_m.x, seed=s.seed)
            rec.metrics["memorization"] = mem.to_dict()
        rec.run(["memorization"], memo)

        if "classifier" in res["features"] and cond is not None:
            def cond_acc() -> None:
                clf = res.pop("_clf")
                hits = (clf(x_gen.float()).argmax(1) == cond[:m]).double()
                rec.metrics["conditional_accuracy"] = {"value": float(hits.mean()), "stderr": float(
                    hits.std() / math.sqrt(m)), "n": m, "floor_is": "the classifier's held-out accuracy"}
            rec.run(["conditional_accuracy"], cond_acc)
    res.pop("_clf", None)

    if isinstance(model, Latent):
        def recon() -> None:
            x = held.x[:min(len(held), 200)]  # encode + decode can be slow (ODE, DDIM inversion)
            xr = model.decode(model.encode(x)).cpu().reshape(x.shape)
            err = (xr.double() - x.double()).reshape(len(x), -1).square().mean(1)
            rmse = float(err.mean().sqrt())  # standard error by the delta method: se(mse) / (2 rmse)
            se = float(err.std() / math.sqrt(len(x))) / (2 * rmse) if rmse > 0 else 0.0
            rec.metrics["reconstruction_rmse"] = {"value": rmse, "stderr": se, "n": len(x),
                "units": "data units (root mean squared error per value)"}
        rec.run(["reconstruction_rmse"], recon)
    else:
        rec.not_computed["reconstruction_rmse"] = f"{model.name} has no latent space (not a Latent family)"
    res.update(metrics=rec.metrics, floor=rec.floor, not_computed=rec.not_computed, seconds=rec.seconds)
    return res


def _features(model, train, test, ref, held, x_gen, s, name, rec, res, verbose):
    """Feature vectors of reference, held-out and generated examples: classifier features when the
    data have labels (and ``s.classifier``), else the flattened examples standardized on ``train``."""
    t0 = time.perf_counter()
    why = None
    if s.classifier and train.y is not None and model.spec.num_classes:
        try:
            clf, info = get_classifier(train.x, train.y, train.spec, name=name, x_val=test.x, y_val=test.y,
                                       seed=s.seed, verbose=verbose)
            res["features"] = {"kind": "classifier", "classifier": {k: v for k, v in info.items() if k != "sha256"}}
            res["_clf"] = clf
            out = tuple(classifier_features(clf, t) for t in (ref.x, held.x, x_gen))
            rec.seconds["features"] = time.perf_counter() - t0
            return out
        except ERRORS as e:
            why = str(e)
    why = why or ("the data set has no class labels" if train.y is None else "classifier features switched off")
    flat = train.x.reshape(len(train), -1).double()
    mu, sd = flat.mean(0), flat.std(0).clamp_min(1e-8)
    res["features"] = {"kind": "standardized examples", "why": why}
    rec.seconds["features"] = time.perf_counter() - t0
    return tuple((t.reshape(len(t), -1).double() - mu) / sd for t in (ref.x, held.x, x_gen))


def evaluate_run(run: str | Path, *, data: str | None = None, split: str = "test",
                 settings: EvalSettings | None = None, verbose: bool = False) -> dict[str, Any]:
    """`evaluate` a run directory on its own ``split`` (or on the data set ``data``, which must
    have the run's spec), against its training split; writes ``RUN/eval.json``."""
    from . import io
    from .data import load_dataset
    from .runs import load_splits

    run = Path(run)
    model = io.load(run)
    cfg = io.read_json(run / "config.json")
    splits = load_splits(cfg["data"])
    if data:
        test = load_dataset(data, seed=cfg["data"].get("seed", 0))
        if test.spec.event_shape != model.spec.event_shape:
            raise ValueError(f"--data {data}: examples of shape {test.spec.event_shape}, but the run's model "
                             f"was trained on {model.spec.event_shape}; pass data of the same kind")
        where = data
    else:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got {split!r}")
        test = getattr(splits, split)
        where = f"{cfg['data']['name']} ({split} split)"
    result = evaluate(model, splits.train, test, settings=settings, data_name=cfg["data"]["name"], verbose=verbose)
    result["data"] = where
    result["n"] = len(test)  # the likelihood figures also at the top level, as in earlier eval.json files
    result.update({k: result["metrics"][k] for k in ("nll_nats", "bits_per_dim", "nll_is") if k in result["metrics"]})
    result["train"] = {"stop_reason": cfg.get("stopped", {}).get("reason"), "steps": cfg.get("stopped", {}).get("step")}
    result = json_safe(result)
    io.write_json(run / "eval.json", result)
    return result
