"""``genlab eval | compare | report``: every metric a run's family supports, the family table
measured on one data set, and a run's own HTML report. Evaluation flags come from `EvalSettings`."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .. import settings
from ..compare import DEFAULT_FAMILIES_RULE, compare, report_run
from ..evaluate import EvalSettings, evaluate_run
from ..report import print_eval
from .common import add_compute_flags, computing, positive_int
from .flags import add_dataclass_flags, dataclass_values
from .metrics import metric_rows
from .parser import COMMANDS

# The evaluation's flags sit beside the data's own options (`--n`: examples to load; `--seed`):
# a setting with one of these names is prefixed `--eval-`; the seed is the command's.
_DATA_OPTIONS = ("n",)
_SKIP = ("seed",)


def _prefix() -> dict[str, str]:
    names = [f.name for f in dataclasses.fields(EvalSettings)] + list(settings.renamed_keys(EvalSettings))
    return {name: "eval-" for name in names if name in _DATA_OPTIONS}


def _add_eval_flags(p: argparse.ArgumentParser) -> None:
    add_dataclass_flags(p.add_argument_group("evaluation"), EvalSettings, skip=_SKIP, prefix=_prefix())


def eval_settings(args: argparse.Namespace, seed: int = 0) -> EvalSettings:
    """The `EvalSettings` given on the command line (with ``seed``); ``--metrics`` names (rows,
    figures, short names) become the rows of the metric table (`genlab.cli.metrics`)."""
    values = dataclass_values(args, EvalSettings, skip=_SKIP, prefix=_prefix())
    if "metrics" in values:
        values["metrics"] = metric_rows(values["metrics"])
    return EvalSettings(**values, seed=seed)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``eval``, ``compare`` and ``report`` to the sub-command parsers ``sub``."""
    ep = sub.add_parser("eval", help=COMMANDS["eval"].help,
                        description="Evaluate RUN on the test split of its data (or --data): likelihood (nats, "
                                    "bits/dim), sampling speed, classifier-FID with its real-vs-held-out floor, "
                                    "precision/recall, density/coverage, MMD, memorization, reconstruction; "
                                    "perplexity and bits/char for text (`genlab metrics` lists them). "
                                    "Prints them, lists what cannot be computed with the reason, writes "
                                    "RUN/eval.json. A run written by the Python API records no data: pass "
                                    "--data, whose --split part is then scored against its training part.")
    ep.set_defaults(handler=cmd_eval)
    ep.add_argument("run", help="run directory")
    ep.add_argument("--data", default=None, help="data set or path to score instead of the run's test split "
                    "(needed for a run written by the Python API)")
    ep.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split (default test)")
    _add_eval_flags(ep)
    add_compute_flags(ep)

    cp = sub.add_parser("compare", help=COMMANDS["compare"].help,
                        description="Train one family per row of the textbook's table of generative models "
                                    "(plus the Gaussian / mixture / kernel baselines) on --data with the same "
                                    "seed, each within its training budget, evaluate each on the test split, "
                                    "and write OUT/results.json and OUT/report.html, which opens with the "
                                    "measured table beside the textbook's words.")
    cp.set_defaults(handler=cmd_compare)
    cp.add_argument("--data", default="digits", help="data set name or path (default: digits)")
    cp.add_argument("--families", default="rows",
                    help=f"comma-separated family names, or {DEFAULT_FAMILIES_RULE} (default: rows)")
    cp.add_argument("--budget", type=float, default=None,
                    help="training minutes of every family (default: each family's own, `genlab list` shows it)")
    cp.add_argument("--jobs", type=int, default=None,
                    help="families trained at once in worker processes (default: CPUs available / --threads; "
                         "the results do not depend on it)")
    cp.add_argument("--seed", type=int, default=0, help="seed of splits, initialisation and sampling (default 0)")
    cp.add_argument("--n-examples", "--n", dest="n", type=int, default=None,
                    help="use only the first N examples (toys: generate N)")
    cp.add_argument("--set", dest="settings", action="append", default=[], metavar="FAMILY.KEY=VALUE",
                    help="a family setting, e.g. vae.latent_dim=8 (repeatable)")
    cp.add_argument("--out", default="compare", help="output folder (default: compare); one comparison per folder")
    cp.add_argument("--overwrite", action="store_true",
                    help="replace the comparison already in --out (without it, an existing one is refused)")
    cp.add_argument("--threads", type=positive_int, default=1, help="torch threads of each family's training (default 1: "
                    "the same for every family; two jobs use two cores better than one job two threads)")
    _add_eval_flags(cp)

    rp = sub.add_parser("report", help=COMMANDS["report"].help,
                        description="Write RUN/report.html: metrics (eval.json, computed if missing), samples, "
                                    "loss curves and, for latent families, an interpolation strip.")
    rp.set_defaults(handler=cmd_report)
    rp.add_argument("run", help="run directory")
    _add_eval_flags(rp)
    add_compute_flags(rp)


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a run, print the metrics and write RUN/eval.json."""
    with computing(args, "genlab eval") as beat:
        beat.status("evaluating")
        result = evaluate_run(args.run, data=args.data, split=args.split, settings=eval_settings(args), verbose=True)
    print_eval(result)
    print(f"wrote {Path(args.run) / 'eval.json'}")
    return 0


def _family_settings(items: list[str]) -> dict[str, dict[str, str]]:
    configs: dict[str, dict[str, str]] = {}
    for s in items:
        key, eq, value = s.partition("=")
        fam, dot, name = key.partition(".")
        if not eq or not dot:
            raise ValueError(f"--set expects FAMILY.KEY=VALUE (e.g. vae.latent_dim=8), got {s!r}")
        configs.setdefault(fam.strip(), {})[name.strip()] = value.strip()
    return configs


def cmd_compare(args: argparse.Namespace) -> int:
    """Train and evaluate several families; print each one's metrics; write the report."""
    families = args.families.strip()
    if families not in ("rows", "all"):
        families = [f.strip() for f in families.split(",") if f.strip()]
    settings_ = eval_settings(args, args.seed)
    with computing(argparse.Namespace(), "genlab compare") as beat:  # --threads is each family's
        each = "each family's own budget" if args.budget is None else f"{args.budget:g} min each"
        beat.status(f"training ({each}) and evaluating")
        res = compare(args.data, families, args.budget, seed=args.seed, out=args.out, jobs=args.jobs,
                      configs=_family_settings(args.settings), n=args.n, settings=settings_, threads=args.threads,
                      overwrite=args.overwrite)
    for r in res["families"]:
        if "eval" in r:
            print_eval(r["eval"])
        else:
            print(f"{r['family']}: {r['error']}")
    print(f"total {res['total_seconds']:.0f} s; wrote {Path(args.out) / 'results.json'} and "
          f"{Path(args.out) / 'report.html'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write a run's report.html."""
    with computing(args, "genlab report") as beat:
        beat.status("evaluating and drawing")
        path = report_run(args.run, settings=eval_settings(args), verbose=True)
    print(f"wrote {path}")
    return 0
