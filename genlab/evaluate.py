"""Every metric a model supports, on one data set, as one JSON-able dictionary.

`METRICS` is a table of `MetricSpec` rows: the metrics a row reports, the capability or density
it requires (read from the protocol), the inputs it needs from earlier rows (samples, features,
the feature classifier) and its function. `evaluate` walks it once; a row that cannot be
computed (`NotSupported`: a missing capability or input, or a refusal) is listed under
``not_computed`` with the reason. Any other exception is a bug and propagates.

Sample metrics compare ``n`` generated examples and ``n`` held-out (test) examples with the same
reference (the training set), so each model figure has a *floor* beside it: the same metric for
real held-out data, the best a model can expect at this n.
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from . import io
from .data import Dataset
from .data.stream import VAL_LIMIT, streamed
from .metrics import bits_per_dim, mean_se
from .metrics.ais_latent import ais_log_prob
from .metrics.ais_latent import check as ais_check
from .metrics.budget import brief, sized
from .metrics.classifier import FeatureClassifier, conditional_accuracy
from .metrics.classifier_cache import (CACHE_ENV, DEFAULT_CACHE, classifier_cache_dir,  # noqa: F401  (API)
                                       feature_classifier, sample_features)
from .metrics.fid import fid
from .metrics.capped import capped_likelihood
from .metrics.memorization import memorization
from .metrics.reconstruction import reconstruction_rmse
from .metrics.samples import density_coverage, mmd, precision_recall
from .metrics.speed import timed_samples
from .metrics.summary import capabilities, json_safe, parameters  # noqa: F401  (genlab.evaluate's API)
from .protocol import Decoder, Density, GenerativeModel, Latent, NotSupported, Partition, takes_labels


@dataclass
class EvalSettings:
    """Settings of `evaluate`."""

    # old names, still read from saved settings and accepted as (hidden) command-line flags
    renamed: ClassVar[dict[str, str]] = {"n": "max_examples", "k_pr": "precision_recall_k",
                                         "k_dc": "density_coverage_k", "n_ref": "max_reference"}

    max_examples: int = field(default=2000, metadata={"help": "at most this many generated and held-out examples"})
    seed: int = field(default=0, metadata={"help": "seed of sampling, subsets and bootstraps"})
    fid_min_examples: int = field(default=2000, metadata={"help": "classifier-FID refuses fewer examples"})
    precision_recall_k: int = field(default=3, metadata={
        "help": "k of the k-nearest-neighbour balls of precision/recall"})
    density_coverage_k: int = field(default=5, metadata={
        "help": "k of the k-nearest-neighbour balls of density/coverage"})
    max_sample_seconds: float = field(default=60.0, metadata={"help": "sampling time cap (n is lowered)"})
    max_reference: int = field(default=5000, metadata={
        "help": "at most this many training examples as the reference set"})
    classifier: bool = field(default=True, metadata={"help": "use classifier features when labels exist"})
    ais_steps: int = field(default=0, metadata={
        "help": "annealed importance sampling of log p(x) over codes with this many steps (0: off): "
                "latent-variable models (each step 6 decoder passes with gradients on 16 chains per example); "
                "energy models: used for log Z instead of --log-z-steps when > 0"})
    log_z_steps: int = field(default=1000, metadata={
        "help": "AIS steps for an energy model's log Z where it cannot be enumerated or integrated (rbm beyond "
                "20 hidden units, ebm beyond 2 values per example); 0: no NLL for those"})
    ais_examples: int = field(default=200, metadata={"help": "held-out examples scored by AIS"})
    metric_seconds: float = field(default=30.0, metadata={"min": 0, "help":
        "time cap of each metric in seconds: measured pilots decide how many held-out examples a metric over "
        "examples (NLL, AIS, reconstruction) uses, how many AIS steps an energy model's log Z gets, how many "
        "timesteps per example a diffusion bound sums (an unbiased estimate, its noise in the stderr) and how "
        "many samples are drawn, so that each fits; what was cut is shown (0: no cap)"})
    metrics: str = field(default="all", metadata={
        "help": "comma-separated metrics to compute, e.g. nll,fid (default: all; `genlab metrics` lists them)"})


# -- the metric table ---------------------------------------------------------------------------------
Figures = tuple[dict[str, Any], dict[str, Any]]  # (figures of the model, floors: held-out data alike)


@dataclass
class Context:
    """What the rows of the metric table read: the model, the data, the settings, and the inputs
    that earlier rows made (``samples``, ``features``, ``classifier``), or why each is missing."""

    model: GenerativeModel
    train: Dataset
    test: Dataset
    s: EvalSettings
    name: str
    cache: str | Path | None
    verbose: bool
    keep: dict[str, Tensor] | None
    held: Dataset  # n held-out examples (the floor of the sample metrics)
    ref: Dataset  # the training examples the sample metrics compare with
    cond: Tensor | None  # labels of ``held`` for a model that takes labels
    samples: Tensor | None = None  # (m, *event_shape) generated
    features: tuple[Tensor, Tensor, Tensor] | None = None  # reference, first m held-out, generated
    feature_info: dict[str, Any] | None = None  # result["features"]
    classifier: FeatureClassifier | None = None
    missing: dict[str, str] = field(default_factory=dict)  # input -> why it is missing
    seconds: dict[str, float] = field(default_factory=dict)
    limit: int | None = None  # examples a row over examples reads now (`MetricSpec.examples`)
    cut: dict[str, str] = field(default_factory=dict)  # row -> why it used fewer examples or samples

    def first(self, x: Tensor) -> Tensor:
        """The first `limit` rows of ``x`` (all of them without a limit)."""
        return x if self.limit is None else x[:self.limit]

    @property
    def cap(self) -> float | None:
        """Seconds each row may take (None: no cap)."""
        return self.s.metric_seconds if self.s.metric_seconds > 0 else None


@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table.

    Attributes:
        names: the metrics it reports (each listed under ``not_computed`` when it cannot be).
        compute: ``compute(ctx) -> (figures, floors)``; raises `NotSupported` to say why not.
        requires: the capability or density it needs: ``requires(model)`` raises `NotSupported`,
            with the reason, when the model lacks it.
        needs: inputs made by earlier rows: ``"samples"``, ``"features"``, ``"classifier"``.
        provides: the input this row makes (missing, with its reason, when the row fails).
        asked: ``asked(ctx)`` False leaves the row out (switched off, or nothing to report).
        examples: for a row that averages over examples, ``examples(ctx)``: how many it reads in
            full; ``compute`` then reads ``ctx.first(x)``, and the time cap decides how many (`sized`).
    """

    names: tuple[str, ...]
    compute: Callable[[Context], Figures]
    requires: Callable[[GenerativeModel], None] = lambda model: None
    needs: tuple[str, ...] = ()
    provides: str | None = None
    asked: Callable[[Context], bool] = lambda ctx: True
    examples: Callable[[Context], int] | None = None


def _annealed(ctx: Context) -> Figures:
    """A tighter (stochastic lower) bound on log p(x) than the ELBO / IWAE."""
    s = ctx.s
    lp = ais_log_prob(ctx.model, ctx.first(ctx.test.x[:s.ais_examples]), steps=s.ais_steps, leapfrog=5,
                      generator=torch.Generator().manual_seed(s.seed))
    e = mean_se(-lp)
    return {"ais_nll_nats": e.to_dict(), "ais_bits_per_dim": bits_per_dim(e, ctx.model.spec.dim).to_dict()}, {}


def _likelihood(ctx: Context) -> Figures:
    """The likelihood figures within the cap, log Z and a bound's timesteps included (`capped_likelihood`)."""
    figures, why = capped_likelihood(ctx.model, ctx.test.x, ctx.test.y, ais_steps=ctx.s.ais_steps or ctx.s.log_z_steps,
                                     seed=ctx.s.seed, cap=ctx.cap)
    ctx.cut.update({"nll": why} if why else {})
    return figures, {}


def _sampling(ctx: Context) -> Figures:
    """Samples/s; the samples become the input of the sample metrics unless they hold NaN / Inf."""
    s = ctx.s
    cap = s.max_sample_seconds if ctx.cap is None else min(s.max_sample_seconds, ctx.cap)
    x, speed = timed_samples(ctx.model, len(ctx.held), condition=ctx.cond, seed=s.seed, max_seconds=cap)
    if "note" in speed:
        ctx.cut["sampling_speed"] = speed["note"]
    if ctx.keep is not None:
        ctx.keep["samples"] = x
    bad = int((~torch.isfinite(x.reshape(len(x), -1))).any(1).sum()) if x.is_floating_point() else 0
    ctx.samples = None if bad else x
    if bad:
        ctx.missing["samples"] = f"no samples: {bad} of {len(x)} samples hold NaN or Inf"
    return {"sampling_speed": speed}, {}


def _features(ctx: Context) -> None:
    """Feature vectors of reference, held-out and generated examples (`sample_features`); the
    floor uses as many held-out examples as were generated."""
    t0 = time.perf_counter()
    parts = (ctx.ref.x, ctx.held.x[:len(ctx.samples)], ctx.samples)
    ctx.features, ctx.feature_info, ctx.classifier, why = sample_features(
        ctx.train, ctx.test, parts, use_classifier=ctx.s.classifier, classes=ctx.model.spec.num_classes,
        name=ctx.name, seed=ctx.s.seed, cache=ctx.cache, verbose=ctx.verbose)
    if why is not None:
        ctx.missing["classifier"] = f"needs classifier features: {why}"
    ctx.seconds["features"] = time.perf_counter() - t0


def _why_missing(ctx: Context, need: str) -> str | None:
    """Why the input ``need`` is missing, or None; features and the classifier are made on first use."""
    if "samples" in ctx.missing:
        return ctx.missing["samples"]
    if ctx.samples is None:
        raise RuntimeError(f"metric table: a row needs {need!r} before the sampling row has run")
    if need != "samples" and ctx.features is None:
        _features(ctx)
    return ctx.missing.get(need)


def _with_floor(fn: Callable[[Context, Tensor], dict[str, Any]]) -> Callable[[Context], Figures]:
    """A sample metric ``fn(ctx, features) -> figures`` of the generated features, with the same
    figures of the held-out features as its floor."""
    return lambda ctx: (fn(ctx, ctx.features[2]), fn(ctx, ctx.features[1]))


def _manifold(ctx: Context, f: Tensor) -> dict[str, Any]:
    """Precision / recall (k-NN manifolds) and density / coverage of ``f`` against the reference."""
    p, r = precision_recall(ctx.features[0], f, k=ctx.s.precision_recall_k)
    d, c = density_coverage(ctx.features[0], f, k=ctx.s.density_coverage_k)
    return {"precision": p.to_dict(), "recall": r.to_dict(), "density": d.to_dict(), "coverage": c.to_dict()}


def _has_likelihood(model: GenerativeModel) -> None:
    if model.density not in (Density.EXACT, Density.BOUND) and not isinstance(model, Partition):
        raise NotSupported(f"{model.name}: density is {model.density.value}, so it has no likelihood; "
                           "use sample-based metrics instead")


def _latent(model: GenerativeModel) -> None:
    if not isinstance(model, Latent):
        what = "no encoder (it decodes codes only)" if isinstance(model, Decoder) else "no latent space"
        raise NotSupported(f"{model.name} has {what}: not a Latent family")


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(("nll",), _likelihood, requires=_has_likelihood),  # nll_nats, bits_per_dim, nll_is, ...
    # energy models spend their AIS steps on log Z (the nll row)
    MetricSpec(("ais",), _annealed, requires=ais_check,
               asked=lambda c: c.s.ais_steps > 0 and not isinstance(c.model, Partition),
               examples=lambda c: min(c.s.ais_examples, len(c.test))),
    MetricSpec(("sampling_speed",), _sampling, provides="samples"),
    MetricSpec(("mmd",), _with_floor(lambda c, f: {"mmd": mmd(c.features[0], f).to_dict()}), needs=("features",)),
    MetricSpec(("precision", "recall", "density", "coverage"), _with_floor(_manifold), needs=("features",)),
    MetricSpec(("classifier_fid",), _with_floor(lambda c, f: {"classifier_fid": fid(
        c.features[0], f, min_examples=c.s.fid_min_examples, seed=c.s.seed).to_dict()}), needs=("classifier",)),
    MetricSpec(("memorization",), lambda c: ({"memorization": memorization(
        c.samples, c.train.x, c.held.x[:len(c.samples)], seed=c.s.seed).to_dict()}, {}), needs=("samples",)),
    MetricSpec(("conditional_accuracy",), lambda c: ({"conditional_accuracy": conditional_accuracy(
        c.classifier, c.samples, c.cond[:len(c.samples)])}, {}), needs=("classifier",),
        asked=lambda c: c.cond is not None and _why_missing(c, "classifier") is None),
    # encode + decode can be slow (ODE, DDIM inversion): at most 200 examples
    MetricSpec(("reconstruction_rmse",), lambda c: ({"reconstruction_rmse": reconstruction_rmse(
        c.model, c.first(c.held.x[:200]))}, {}), requires=_latent, examples=lambda c: min(200, len(c.held))),
)


def picked(s: EvalSettings) -> tuple[MetricSpec, ...]:
    """The rows of `METRICS` named in ``s.metrics`` (every row for ``"all"``), with the rows that
    make their inputs (the samples of the sample metrics)."""
    wanted = {w.strip() for w in s.metrics.split(",") if w.strip()} - {"all"}
    if not wanted:
        return METRICS
    known = [n for r in METRICS for n in r.names]
    if wanted - set(known):
        raise ValueError(f"metrics: unknown {', '.join(sorted(wanted - set(known)))}; choose among "
                         f"{', '.join(known)}, or all")
    rows = [r for r in METRICS if wanted & set(r.names)]
    return tuple(r for r in METRICS if r in rows or (r.provides and any(q.needs for q in rows)))


def _row(ctx: Context, spec: MetricSpec) -> Figures:
    """One row's figures, or `NotSupported`: a requirement or input is missing, or it refuses."""
    spec.requires(ctx.model)
    for need in spec.needs:
        why = _why_missing(ctx, need)
        if why:
            raise NotSupported(why)
    t0 = time.perf_counter()
    try:
        if spec.examples is None:
            return spec.compute(ctx)

        def run(n: int) -> Figures:
            ctx.limit = n
            return spec.compute(ctx)
        out, _, why = sized(run, spec.examples(ctx), ctx.cap)
        if why:
            ctx.cut["/".join(spec.names)] = why
        return out
    finally:
        ctx.limit = None
        ctx.seconds["/".join(spec.names)] = time.perf_counter() - t0


def _say(ctx: Context, spec: MetricSpec, what: str) -> None:
    """The progress line of one row (verbose only): its name, seconds, figures, and why it was cut."""
    if ctx.verbose:
        row = "/".join(spec.names)
        why = f"; cut: {ctx.cut[row]}" if row in ctx.cut else ""
        print(f"  {row}: {ctx.seconds.get(row, 0.0):.1f} s: {what}{why}", file=sys.stderr, flush=True)


def evaluate(model: GenerativeModel, train: Dataset, test: Dataset, *, settings: EvalSettings | None = None,
             data_name: str | None = None, verbose: bool = False, keep: dict[str, Tensor] | None = None,
             classifier_cache: str | Path | None = DEFAULT_CACHE) -> dict[str, Any]:
    """Every metric ``model`` supports on the held-out ``test`` set, against ``train``: the rows
    of `METRICS`.

    Args:
        model: a trained model of any family (eval mode).
        train: the training set (the reference of the sample metrics and of memorization).
        test: held-out examples (NLL; the floor of the sample metrics).
        settings: `EvalSettings`.
        data_name: the data set's name (names the cached feature classifier).
        keep: if given, receives the generated samples under ``"samples"`` (for figures).
        classifier_cache: folder that keeps the feature classifier (see `classifier_cache_dir`):
            ``~/.cache/genlab`` (or ``$GENLAB_CACHE``) by default; None: no files read or written.
    Returns:
        JSON-able dict: family, density, capabilities, parameters, ``metrics`` (each figure with
        stderr and n), ``floor`` (held-out data under the same sample metrics), ``features``,
        ``not_computed`` {metric: reason}, ``seconds`` {row: seconds}, ``cut`` {row: why it used
        fewer examples or samples than asked (the time cap, ``settings.metric_seconds``)}.
    Raises:
        Whatever a metric raises other than `NotSupported` (a bug is not a "not computed" line).
    """
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    model.eval()
    s, name = settings or EvalSettings(), data_name or test.name
    g = torch.Generator().manual_seed(s.seed)
    held = test.subset(torch.randperm(len(test), generator=g)[:min(s.max_examples, len(test))])
    ref = train.subset(torch.randperm(len(train), generator=g)[:min(s.max_reference, len(train))])
    ctx = Context(model, train, test, s, name, classifier_cache, verbose, keep, held, ref,
                  held.y if takes_labels(model) and held.y is not None else None)
    metrics, floor, not_computed = {}, {}, {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small operations: a second thread costs more in synchronisation than
    try:  # it gains, and on a busy machine much more
        with threadpool_limits(1):  # numpy's BLAS too (the Fréchet distance's eigen-decompositions)
            for spec in picked(s):
                if not spec.asked(ctx):
                    continue
                try:
                    figures, floors = _row(ctx, spec)
                except NotSupported as e:  # a refusal after a cut (too few AIS steps to converge) keeps the cut
                    ctx.cut.update({"/".join(spec.names): e.cut} if getattr(e, "cut", None) else {})
                    not_computed.update(dict.fromkeys(spec.names, str(e)))
                    if spec.provides:
                        ctx.missing[spec.provides] = f"no {spec.provides}: {e}"
                    _say(ctx, spec, f"not computed ({str(e)[:100]})")
                    continue
                _say(ctx, spec, brief(figures))
                metrics.update(figures)
                floor.update(floors)
    finally:
        torch.set_num_threads(threads)
    res: dict[str, Any] = {"family": model.name, "data": name, "density": model.density.value,
                           "capabilities": capabilities(model), "parameters": parameters(model),
                           "n_train": len(train), "n_test": len(test), "settings": asdict(s)}
    if ctx.feature_info is not None:
        res["features"] = ctx.feature_info
    res.update(metrics=metrics, floor=floor, not_computed=not_computed, seconds=ctx.seconds, cut=ctx.cut)
    return res


def evaluate_run(run: str | Path, *, data: str | None = None, split: str = "test",
                 settings: EvalSettings | None = None, verbose: bool = False,
                 classifier_cache: str | Path | None = DEFAULT_CACHE) -> dict[str, Any]:
    """`evaluate` a run directory on its own ``split`` (or on the data set ``data``, which must
    have the run's spec), against its training split; writes ``RUN/eval.json``. A run that records
    no data (trained through the Python API) needs ``data``: it is split as `genlab train` splits
    data, its ``split`` part scored against its training part. ``classifier_cache``: see `evaluate`."""
    from .data import load_dataset
    from .data import split as split_data
    from .runs import load_splits

    run = Path(run)
    model = io.load(run)
    cfg = io.read_config(run)
    record = cfg.get("data")  # None: `Trainer(..., out=RUN)` does not know where its data came from
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    if not data and not record:
        raise ValueError(f"{run} does not record the data it was trained on (a run written by the Python API); "
                         f"pass --data NAME|PATH: its {split} split is scored against its training split")
    if data:
        test = load_dataset(data, seed=(record or {}).get("seed", 0))
        if test.spec.event_shape != model.spec.event_shape:
            raise ValueError(f"--data {data}: examples of shape {test.spec.event_shape}, but the run's model "
                             f"was trained on {model.spec.event_shape}; pass data of the same kind")
    splits = load_splits(record) if record else split_data(test)
    if data and record:  # the whole of --data, against the run's own training split
        where = data
    else:
        test, where = getattr(splits, split), f"{data or record['name']} ({split} split)"
    train = splits.train
    if streamed(train) or streamed(test):  # a streamed run is scored on the first VAL_LIMIT examples of each
        train, test = (d.materialize(VAL_LIMIT) if streamed(d) else d for d in (train, test))
    result = evaluate(model, train, test, settings=settings, data_name=record["name"] if record else data,
                      verbose=verbose, classifier_cache=classifier_cache)
    result["data"] = where
    result["n"] = len(test)  # the likelihood figures also at the top level, as in earlier eval.json files
    result.update({k: result["metrics"][k] for k in ("nll_nats", "bits_per_dim", "nll_is") if k in result["metrics"]})
    result["train"] = {"stop_reason": cfg.get("stopped", {}).get("reason"), "steps": cfg.get("stopped", {}).get("step")}
    result = json_safe(result)
    io.write_json(run / "eval.json", result)
    return result
