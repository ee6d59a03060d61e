"""`genlab compare`: train several families under one time budget and seed, evaluate each, and
write ``OUT/results.json`` and ``OUT/report.html`` (the measured family table of DESIGN.md).
Also `report_run`: the HTML report of one run (``genlab report RUN``).

Nothing here knows a family by name: capabilities come from the protocol, and a family that
cannot be trained or evaluated on the data gets a row that says why.

The default families (`default_families`): every registered family that declares
``in_default_compare`` in its own module and whose ``data_kinds`` hold the data's kind. Why a
declaration and not all capable families: 22 families can model digits, about a minute of budget
each plus evaluation is far past what a user waits for the main job, and capabilities alone
cannot pick a representative per row (realnvp, glow and nsf declare the same ones). The flag
lives in each family's module, so a new family still joins by its module alone. Translators
never join by default (no column of the table measures a translation). A family that declares
the kind but cannot model this data gets a row saying why; ``--families`` names any others.
The flag counts only where a class sets it itself (iwae does not inherit vae's).
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from . import io
from .data import Splits
from .data.spec import DataSpec
from .evaluate import EvalSettings, evaluate, json_safe
from .protocol import GenerativeModel, Latent, NotSupported, Translator
from .registry import families as registered_families
from .registry import get_family
from .report.figures import save_run_figures
from .report.plots import interpolation_png, loss_png, samples_png
from .report.results import compare_page, family_section, run_page
from .runs import load_splits, train_run
from .train import TrainConfig

DEFAULT_FAMILIES_RULE = "the families that declare in_default_compare and model the data's kind"
# Minutes of training per family; families that converge (closed forms, early stopping) stop sooner.
DEFAULT_BUDGET_MINUTES = 1.0


def default_families(spec: DataSpec) -> list[str]:
    """The families `compare` trains on data of ``spec`` when none are named (the rule and its
    reason are in this module's docstring), in registry order."""
    return [f for f in registered_families()
            if vars(get_family(f)).get("in_default_compare", False) and spec.kind in get_family(f).data_kinds
            and not issubclass(get_family(f), Translator)]


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


def compare(data: str, families: list[str] | None = None, budget_minutes: float = DEFAULT_BUDGET_MINUTES, *,
            seed: int = 0, out: str | Path = "compare", configs: dict[str, dict[str, Any]] | None = None,
            n: int | None = None, settings: EvalSettings | None = None, threads: int | None = 1,
            verbose: bool = True) -> dict[str, Any]:
    """Train each family on ``data`` for at most ``budget_minutes`` (same seed), evaluate it on the
    test split, and write ``out/results.json`` and ``out/report.html`` (runs in ``out/runs/``).

    Args:
        data: a data set name or path (`genlab.data.load_dataset`).
        families: registered family names (default: `default_families` of the data).
        budget_minutes: wall-clock training budget per family (early stopping may end it sooner).
        configs: per-family settings, e.g. ``{"vae": {"latent_dim": 8}}``.
        n: use only the first n examples (toys: generate n).
        settings: `EvalSettings` (sample counts, FID minimum, ...).
        threads: torch threads for training (None: leave as is). One by default: every family
            gets the same, and on a busy machine two threads spin against each other.
    Returns:
        The results dictionary written to results.json.
    """
    if budget_minutes <= 0:
        raise ValueError(f"compare: --budget must be positive minutes, got {budget_minutes}")
    if threads is not None and threads < 1:
        raise ValueError(f"compare: threads must be >= 1, got {threads}")
    for f in families or ():
        get_family(f)  # unknown names fail before any data or training, with the list of known ones
    t_start = time.perf_counter()
    splits = load_splits({"name": data, "seed": seed, "split_seed": seed, "val": 0.1, "test": 0.1, "n": n})
    families = list(families or default_families(splits.train.spec))
    if not families:
        raise ValueError(f"compare: no registered family models {splits.train.spec.kind.value} data")
    unknown = sorted(set(configs or {}) - set(families))
    if unknown:
        raise ValueError(f"compare: settings given for {unknown}, which are not among --families {families}")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _compare(data, splits, families, budget_minutes, seed, Path(out), configs or {}, n,
                        settings or EvalSettings(seed=seed), verbose, t_start)
    finally:
        torch.set_num_threads(before)


def _compare(data: str, splits: Splits, families: list[str], budget_minutes: float, seed: int, out: Path,
             configs: dict[str, dict[str, Any]], n: int | None, s: EvalSettings, verbose: bool,
             t_start: float) -> dict[str, Any]:
    rows, sections = [], []
    for fam in families:
        row: dict[str, Any] = {"family": fam}
        run_dir = out / "runs" / fam
        if run_dir.exists():
            shutil.rmtree(run_dir)  # compare rewrites its own run folders
        if verbose:
            print(f"[{time.perf_counter() - t_start:6.0f} s] {fam}: training (budget {budget_minutes:g} min)",
                  flush=True)
        try:
            t0 = time.perf_counter()
            train = TrainConfig(seed=seed, max_minutes=budget_minutes, progress=False)
            model, _ = train_run(fam, data, run_dir, config=configs.get(fam), train=train, n=n,
                                 split_seed=seed)
            stopped = io.read_json(run_dir / "config.json").get("stopped", {})
            row["train"] = {"seconds": time.perf_counter() - t0, "stop_reason": stopped.get("reason"),
                            "steps": stopped.get("step"), "epochs": stopped.get("epoch")}
        except NotSupported as e:
            row.update(status="not supported", error=f"cannot model this data: {e}")
        except Exception as e:  # one family's failure must not cost the others their rows
            row.update(status="failed", error=f"training failed: {type(e).__name__}: {e}")
        if "error" in row:
            if verbose:
                print(f"         {fam}: {row['error']}", flush=True)
            rows.append(row)
            sections.append(("", family_section(fam, None, {"figures": row["error"]})))
            continue
        if verbose:
            print(f"[{time.perf_counter() - t_start:6.0f} s] {fam}: evaluating", flush=True)
        keep: dict[str, torch.Tensor] = {}
        try:
            ev = evaluate(model, splits.train, splits.test, settings=s, data_name=data, keep=keep, verbose=verbose)
            figs = family_figures(model, run_dir, keep.get("samples"), splits.test.x,
                                  ev["not_computed"].get("sampling_speed"))
            # the run folder's own pictures, as `genlab train` leaves them, from the same samples
            save_run_figures(run_dir, fam, model.spec, keep.get("samples"), reference=splits.test.x[:2000])
        except Exception as e:  # as above: report it in the family's row
            row.update(status="failed", error=f"evaluation failed: {type(e).__name__}: {e}")
            rows.append(row)
            sections.append(("", family_section(fam, None, {"figures": row["error"]})))
            continue
        row.update(status="ok", eval=ev)
        sections.append(("", family_section(fam, ev, figs)))
        rows.append(row)
    results = {"data": data, "families": rows, "budget_minutes": budget_minutes, "seed": seed,
               "n_train": len(splits.train), "n_test": len(splits.test), "is_image": splits.train.spec.is_image,
               "spec": splits.train.spec.to_dict(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "threads": torch.get_num_threads(), "machine": f"{torch.get_num_threads()} training thread(s), "
                                                                 f"torch {torch.__version__}",
               "total_seconds": time.perf_counter() - t_start}
    results = json_safe(results)
    io.write_json(out / "results.json", results)
    sections = [("Samples, training curves and interpolations", "")] + sections
    html = compare_page(results, sections)
    io.atomic_write(out / "report.html", html.encode())
    for f in ("results.json", "report.html"):
        (out / f).chmod(0o644)  # a report is for reading (the temporary file was private)
    results["total_seconds"] = time.perf_counter() - t_start
    return results


def report_run(run: str | Path, *, settings: EvalSettings | None = None, verbose: bool = False) -> Path:
    """Write ``RUN/report.html``: the run's metrics (from eval.json, computed when missing or made
    with other settings), its samples, loss curves and interpolation."""
    from .evaluate import evaluate_run

    run = Path(run)
    model = io.load(run)
    cfg = io.read_json(run / "config.json")
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
    (run / "report.html").chmod(0o644)
    return run / "report.html"


__all__ = ["DEFAULT_BUDGET_MINUTES", "DEFAULT_FAMILIES_RULE", "compare", "default_families", "report_run"]
