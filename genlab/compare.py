"""`genlab compare`: train several families under one seed, each with its training budget, evaluate
each, and write ``OUT/results.json`` and ``OUT/report.html``: the textbook's table of generative
families (`genlab.taxonomy`), measured. Also `report_run`: the HTML report of one run.

Nothing here knows a family by name. The default set (``families="rows"``) is one family per row
of the table plus the baselines: every registered family that declares ``in_default_compare`` in
its own class (a subclass does not inherit it) and a ``taxonomy`` row. Why a declaration: 22
families can model digits, a minute each is far past what a user waits for, and capabilities
cannot pick a row's representative (nsf, realnvp and glow declare the same ones). A row's family
that cannot model the data still gets its row, saying why and naming the families of the same row
that can. ``families="all"`` trains every family that models the data's kind (translators never:
no column measures a translation); a list names any.

Families train in ``jobs`` worker processes at once (each on ``threads`` torch threads): the
results do not depend on ``jobs``, since every family has its own seeded run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from . import io
from .data.spec import DataSpec, Kind
from .evaluate import EvalSettings, evaluate, feature_classifier, json_safe
from .metrics.codecs import codec_bits_per_dim
from .protocol import GenerativeModel, Latent, NotSupported, Translator
from .registry import families as registered_families
from .registry import get_family
from .report.figures import save_run_figures
from .report.plots import interpolation_png, loss_png, samples_png
from .report.results import compare_page, family_section, run_page
from .report.taxonomy import measured_table
from .runs import load_splits, train_run
from .taxonomy import ROWS
from .train import TrainConfig

DEFAULT_FAMILIES_RULE = ("rows: one family per row of the textbook table plus the baselines (those that declare "
                         "in_default_compare); all: every family that models the data")


def _row_order(name: str) -> int:
    row = get_family(name).taxonomy
    return ROWS.index(row) if row in ROWS else len(ROWS)


def default_families(spec: DataSpec, which: str = "rows") -> list[str]:
    """The families `compare` trains on data of ``spec``: ``"rows"`` (the default set: see this
    module's docstring; a row's family is kept even when it cannot model ``spec``, so that its row
    says why) or ``"all"`` (every non-translator family that models ``spec.kind``); in table order."""
    if which == "rows":
        names = [f for f in registered_families() if vars(get_family(f)).get("in_default_compare", False)
                 and get_family(f).taxonomy is not None]
    elif which == "all":
        names = [f for f in registered_families()
                 if spec.kind in get_family(f).data_kinds and not issubclass(get_family(f), Translator)]
    else:
        raise ValueError(f"compare: families must be 'rows', 'all' or a list of names, got {which!r}")
    return sorted(names, key=_row_order)


def _alternatives(family: str, spec: DataSpec) -> str:
    """What to use instead of ``family`` on data of ``spec``: families of its row that model it."""
    row = get_family(family).taxonomy
    same = [f for f in registered_families() if get_family(f).taxonomy == row and spec.kind in get_family(f).data_kinds]
    return (f"; for this row use: {', '.join(same)}" if same else
            f"; no family of the row '{row}' models {spec.kind.value} data" if row else "")


def family_figures(model: GenerativeModel, run_dir: Path, samples: torch.Tensor | None,
                   test_x: torch.Tensor, why_no_samples: str | None = None) -> dict[str, tuple[bytes, str] | str]:
    """Sample grid (or scatter), loss curves and, for `Latent` models, an interpolation strip:
    each a (PNG, caption) pair, or the reason it is missing."""
    figs: dict[str, tuple[bytes, str] | str] = {}
    spec = model.spec
    if samples is not None:
        shown = samples[:64] if spec.is_image else samples
        ref = None if spec.is_image else test_x
        figs["samples"] = (samples_png(shown, spec, f"{model.name}: {len(shown)} samples", ref),
                           f"{len(shown)} samples" + ("" if spec.is_image else ", over held-out data (grey)"))
    else:
        figs["samples"] = f"no samples: {why_no_samples or 'sampling failed'}"
    loss = loss_png(run_dir / "metrics.jsonl", f"{model.name}: training")
    figs["loss curves"] = (loss, "losses per training step; val_loss once per epoch") if loss else \
        "no loss curve: the run logged no loss (closed-form fit in one step, or no metrics.jsonl)"
    if isinstance(model, Latent):
        try:
            figs["interpolation"] = (interpolation_png(model, test_x[:8]),
                                     "decoded straight lines between the codes of held-out examples")
        except (NotSupported, ValueError, RuntimeError) as e:
            figs["interpolation"] = f"no interpolation: {e}"
    return figs


@dataclasses.dataclass(frozen=True)
class _Job:
    """One family's part of a comparison, as a worker process receives it."""

    family: str
    data: str
    spec: DataSpec
    out: Path
    config: dict[str, Any] | None
    minutes: float
    seed: int
    n: int | None
    settings: EvalSettings
    threads: int | None
    verbose: bool
    t_start: float  # time.time() when the comparison started (for the progress lines)


def _say(job: _Job, what: str) -> None:
    if job.verbose:
        print(f"[{time.time() - job.t_start:6.0f} s] {job.family}: {what}", flush=True)


def _run_family(job: _Job) -> tuple[dict[str, Any], str]:
    """Train, evaluate and draw one family: (its row of results.json, its report section). A
    failure is reported in the row, never raised: one family must not cost the others their rows."""
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    fam, cls = job.family, get_family(job.family)
    row: dict[str, Any] = {"family": fam, "taxonomy": cls.taxonomy, "training_words": cls.training}
    run_dir = job.out / "runs" / fam
    _say(job, f"training (budget {job.minutes:g} min)")
    try:
        t0 = time.perf_counter()
        train = TrainConfig(seed=job.seed, max_minutes=job.minutes, progress=False)
        model, splits = train_run(fam, job.data, run_dir, config=job.config, train=train, n=job.n,
                                  split_seed=job.seed)
        stopped = io.read_config(run_dir).get("stopped", {})
        row["train"] = {"seconds": time.perf_counter() - t0, "stop_reason": stopped.get("reason"),
                        "steps": stopped.get("step"), "epochs": stopped.get("epoch"), "budget_minutes": job.minutes}
    except NotSupported as e:
        row.update(status="not supported", error=f"cannot model this data: {e}{_alternatives(fam, job.spec)}")
    except Exception as e:
        row.update(status="failed", error=f"training failed: {type(e).__name__}: {e}")
    if "error" in row:
        _say(job, row["error"])
        return row, family_section(fam, None, {"figures": row["error"]})
    _say(job, "evaluating")
    keep: dict[str, torch.Tensor] = {}
    try:
        ev = evaluate(model, splits.train, splits.test, settings=job.settings, data_name=job.data, keep=keep)
        figs = family_figures(model, run_dir, keep.get("samples"), splits.test.x,
                              ev["not_computed"].get("sampling_speed"))
        # the run folder's own pictures, as `genlab train` leaves them, from the same samples
        save_run_figures(run_dir, fam, model.spec, keep.get("samples"), reference=splits.test.x[:2000])
    except Exception as e:
        row.update(status="failed", error=f"evaluation failed: {type(e).__name__}: {e}")
        return row, family_section(fam, None, {"figures": row["error"]})
    row.update(status="ok", eval=ev)
    _say(job, "done")
    return row, family_section(fam, ev, figs)


def _claim(out: Path, overwrite: bool) -> None:
    """Make ``out`` an empty comparison folder, refusing to replace one unless ``overwrite``."""
    old = [out / n for n in ("results.json", "report.html", "runs") if (out / n).exists()]
    if old and not overwrite:
        what = ""
        if (out / "results.json").is_file():
            with contextlib.suppress(ValueError, OSError):
                r = io.read_json(out / "results.json")
                what = f" (data {r.get('data')!r}, {len(r.get('families', []))} families)"
        raise ValueError(f"{out} already holds a comparison{what}; pass --overwrite to replace it, "
                         "or write this one elsewhere with --out DIR")
    for p in old:
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def compare(data: str, families: list[str] | str = "rows", budget_minutes: float | None = None, *,
            seed: int = 0, out: str | Path = "compare", configs: dict[str, dict[str, Any]] | None = None,
            n: int | None = None, settings: EvalSettings | None = None, threads: int | None = 1,
            jobs: int | None = None, verbose: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Train each family on ``data`` within its budget (same seed), evaluate it on the test split,
    and write ``out/results.json`` and ``out/report.html`` (runs in ``out/runs/``).

    Args:
        data: a data set name or path (`genlab.data.load_dataset`).
        families: ``"rows"`` (one per row of the textbook table plus baselines), ``"all"``, or a
            list of registered family names (see `default_families`).
        budget_minutes: wall-clock training budget of every family; None: each family's own
            ``compare_minutes`` (early stopping and closed forms may end it sooner).
        configs: per-family settings, e.g. ``{"vae": {"latent_dim": 8}}``.
        n: use only the first n examples (toys: generate n).
        settings: `EvalSettings` (sample counts, FID minimum, ...).
        threads: torch threads of each family's training (None: leave as is). One by default: small
            models gain little from a second thread, and two jobs use the two cores better.
        jobs: families trained at once, each in a worker process (None: the CPUs this process may
            use divided by ``threads``; 1: in this process, one after another).
        overwrite: replace a comparison already in ``out`` (else it is refused: one folder holds
            one comparison, never runs of two invocations or two data sets mixed).
    Returns:
        The results dictionary written to results.json.
    """
    if budget_minutes is not None and budget_minutes <= 0:
        raise ValueError(f"compare: --budget must be positive minutes, got {budget_minutes}")
    if threads is not None and threads < 1:
        raise ValueError(f"compare: threads must be >= 1, got {threads}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"compare: jobs must be >= 1, got {jobs}")
    for f in ([] if isinstance(families, str) else families):
        get_family(f)  # unknown names fail before any data or training, with the list of known ones
    _claim(Path(out), overwrite)
    t_start = time.time()
    splits = load_splits({"name": data, "seed": seed, "split_seed": seed, "val": 0.1, "test": 0.1, "n": n})
    spec = splits.train.spec
    names = default_families(spec, families) if isinstance(families, str) else list(families)
    if not names:
        raise ValueError(f"compare: no registered family models {spec.kind.value} data")
    unknown = sorted(set(configs or {}) - set(names))
    if unknown:
        raise ValueError(f"compare: settings given for {unknown}, which are not among --families {names}")
    s = settings or EvalSettings(seed=seed)
    if s.classifier and splits.train.y is not None and spec.num_classes:
        try:  # trained once here and cached, instead of once per worker
            feature_classifier(splits.train, splits.test, name=data, seed=s.seed, verbose=verbose)
        except NotSupported:
            pass  # each family's evaluation says why
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = max(1, min(len(names), jobs if jobs is not None else cpus // (threads or 1)))
    plan = [_Job(f, data, spec, Path(out), (configs or {}).get(f), budget_minutes or get_family(f).compare_minutes,
                 seed, n, s, threads, verbose, t_start) for f in names]
    before = torch.get_num_threads()
    try:
        if jobs == 1:
            done = [_run_family(j) for j in plan]
        else:
            # longest budgets first, so that no long family starts last while the other worker idles
            first = sorted(range(len(plan)), key=lambda i: -plan[i].minutes)
            with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
                ran = dict(zip(first, pool.map(_run_family, [plan[i] for i in first])))
            done = [ran[i] for i in range(len(plan))]
    finally:
        torch.set_num_threads(before)
    return _write(data, splits, done, budget_minutes, seed, Path(out), jobs, threads, t_start)


def _write(data: str, splits: Any, done: list[tuple[dict[str, Any], str]], budget_minutes: float | None,
           seed: int, out: Path, jobs: int, threads: int | None, t_start: float) -> dict[str, Any]:
    """results.json and report.html of a finished comparison."""
    rows = [r for r, _ in done]
    spec = splits.train.spec
    references = {}
    if spec.kind is not Kind.CONTINUOUS and spec.levels <= 256:  # what a codec stores without a model
        references = {"codecs_bits_per_dim": codec_bits_per_dim(splits.test.x, spec.levels),
                      "on": f"the {len(splits.test)} test examples stored as one file"}
    results = {"data": data, "families": rows, "budget_minutes": budget_minutes, "seed": seed,
               "n_train": len(splits.train), "n_test": len(splits.test), "is_image": splits.train.spec.is_image,
               "spec": splits.train.spec.to_dict(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "jobs": jobs, "threads": threads,
               "machine": f"{jobs} job(s) of {threads or torch.get_num_threads()} training thread(s), "
                          f"{os.cpu_count()} CPUs, torch {torch.__version__}",
               "references": references, "total_seconds": time.time() - t_start}
    results["taxonomy"] = measured_table(results)
    results = json_safe(results)
    io.write_json(out / "results.json", results)
    sections = [("Samples, training curves and interpolations", "")] + [("", html) for _, html in done]
    io.atomic_write(out / "report.html", compare_page(results, sections).encode())
    return results


def report_run(run: str | Path, *, settings: EvalSettings | None = None, verbose: bool = False) -> Path:
    """Write ``RUN/report.html``: the run's metrics (from eval.json, computed when missing or made
    with other settings), its samples, loss curves and interpolation."""
    from .evaluate import evaluate_run

    run = Path(run)
    model = io.load(run)
    cfg = io.read_config(run)
    ev_path = run / "eval.json"
    ev = io.read_json(ev_path) if ev_path.is_file() else None
    if ev is None or "metrics" not in ev or (settings is not None and ev.get("settings") != json_safe(
            dataclasses.asdict(settings))):
        ev = json_safe(evaluate_run(run, settings=settings, verbose=verbose))
    splits = load_splits(cfg["data"])
    g = torch.Generator().manual_seed(0)
    try:
        samples, why = model.sample(64 if model.spec.is_image else 1000, generator=g).cpu(), None
    except (NotSupported, ValueError, RuntimeError) as e:
        samples, why = None, str(e)
    figs = family_figures(model, run, samples, splits.test.x, why)
    info = {"run": str(run), "spec": cfg.get("spec", {}), "config": cfg.get("config", {}),
            "trainer": {k: v for k, v in cfg.get("trainer", {}).items() if k in ("epochs", "batch_size", "lr",
                                                                                    "seed", "max_minutes")},
            "train": {"stop_reason": cfg.get("stopped", {}).get("reason")}}
    io.atomic_write(run / "report.html", run_page(ev, info, figs).encode())
    return run / "report.html"


__all__ = ["DEFAULT_FAMILIES_RULE", "compare", "default_families", "report_run"]
