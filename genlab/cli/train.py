"""``genlab train | resume``: runs made and continued.

``genlab train`` has one sub-command per registered family; its settings (``--set``) come from the
family's config dataclass and its trainer flags from `TrainConfig`, so a new family or a new
trainer setting appears here without an edit. ``--config FILE`` reads the same settings from a
JSON file (`genlab.cli.runconfig`): a run's own config.json re-runs that run.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
import typing
from itertools import chain
from pathlib import Path

import torch

from .. import io, rundir, settings
from ..data import Splits, dataset_names
from ..data.datasets import network_names
from ..data.spec import Kind
from ..protocol import GenerativeModel
from ..registry import config_fields, families, get_family
from ..report import save_run_figures
from ..report.preview import preview_samples
from ..runs import resume_run, saved_train_config, train_run
from ..train import TrainConfig
from ..train.distributed import barrier, name_failed_ranks, world
from ..train.progress import Heartbeat
from .common import computing
from .flags import add_dataclass_flags, dataclass_values, field_default
from .parser import COMMANDS, EPILOG
from .runconfig import read_run_config
from .sample import text_of

DATA_HELP = ("data set name ({names}), bif:NAME for a Bayesian network ({networks}) or bif:PATH, a path to "
             ".npy/.npz/.csv/.txt/.bif or a folder of images, image sets joined by + for unpaired domains "
             "(digits+mnist5k); add :binary to make grey levels black and white (mnist5k:binary; "
             ":binary=T for threshold level T)")
N_HELP = ("use only the first N examples (toys: generate N). Under torchrun spell it --n-examples: torchrun "
          "reads --n as an abbreviation of its own --nnodes/--nproc-per-node and refuses the command")
TEXT_SAMPLES = 16  # a text run's samples.txt: enough to read
# Of a --max-minutes budget, this share (within the bounds below, and at most half) is kept for
# samples.png / samples.txt and loss.png; training stops in time to leave it.
PREVIEW_SHARE, PREVIEW_LEAST_S, PREVIEW_MOST_S = 0.1, 5.0, 60.0
FIGURE_SECONDS = 2.0  # writing the PNGs after the samples are drawn (matplotlib's import included)


def _type_name(hint: object) -> str:
    """``int``, ``float or none``, ``linear|cosine``: a setting's type as the help shows it."""
    choices, optional = settings.choices_of(hint)
    if choices is not None:
        name = "|".join(map(str, choices))
    else:
        args = [a for a in typing.get_args(hint) if a is not type(None)] if optional else [hint]
        name = getattr(args[0], "__name__", str(args[0])).replace("typing.", "") if len(args) == 1 else \
            str(hint).replace("typing.", "")
    return name + (" or none" if optional else "")


def _summary(cls: type[GenerativeModel]) -> str:
    return (cls.__doc__ or "").strip().split("\n")[0]


def _trainer_defaults(cls: type[GenerativeModel]) -> dict:
    return {"epochs": cls.default_epochs, **cls.default_train}


def family_help(name: str) -> str:
    """The description of ``genlab train FAMILY``: capabilities, trainer defaults and every setting."""
    cls = get_family(name)
    lines = [f"{name}: density {cls.density.value}; sampling {cls.sampling}; training {cls.training}.",
             _summary(cls),
             f"trainer defaults for {name}: " + ", ".join(f"{k}={v}" for k, v in _trainer_defaults(cls).items())
             + " (flags below override)", "", "settings (--set key=value):"]
    for f, t in config_fields(cls):
        lines.append(f"  {f.name} ({_type_name(t)}, default {field_default(f)!r}): {f.metadata.get('help', '')}")
    return "\n".join(lines)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``resume`` to the sub-command parsers ``sub``."""
    tp = sub.add_parser("train", help=COMMANDS["train"].help,
                        description="Train FAMILY on a named data set or a file; writes runs/<name>/ "
                                    "(config.json, model.safetensors, checkpoint, metrics.jsonl, samples.png). "
                                    "`genlab train --config FILE` takes the family and every setting from a "
                                    "JSON file (a run's config.json re-runs that run).",
                        epilog=EPILOG)
    tp.set_defaults(handler=cmd_train)
    fam = tp.add_subparsers(dest="family", metavar="FAMILY", required=True)
    data_help = DATA_HELP.format(names=", ".join(dataset_names()), networks=", ".join(network_names()))
    for name in families():
        cls = get_family(name)
        fp = fam.add_parser(name, help=_summary(cls), description=family_help(name),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        fp.add_argument("--data", default=None, help=data_help + " (default: digits)")
        fp.add_argument("--n-examples", "--n", dest="n", type=int, default=None, help=N_HELP)
        fp.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a family setting (repeatable); see the list above")
        fp.add_argument("--out", default=None, help="run directory (default: runs/FAMILY-DATA, never overwritten)")
        fp.add_argument("--config", default=None, metavar="FILE",
                        help="a JSON file of settings, shaped like a run's config.json (family, data, config, "
                             "trainer); a run's config.json re-runs that run; flags given here win")
        add_dataclass_flags(fp.add_argument_group("trainer"), TrainConfig, unset=True,
                            defaults=dataclasses.asdict(TrainConfig().for_family(cls)))

    rp = sub.add_parser("resume", help=COMMANDS["resume"].help,
                        description="Continue RUN from checkpoint.safetensors exactly where it stopped.")
    rp.set_defaults(handler=cmd_resume)
    rp.add_argument("run", help="run directory")
    rp.add_argument("--epochs", type=int, default=None, help="train up to this many epochs in all")
    rp.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes")


def _default_out(family: str, data: str) -> Path:
    base = Path("runs") / f"{family}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(data).stem or data)}"
    out, k = base, 2
    while out.exists() and any(out.iterdir()):
        out, k = Path(f"{base}-{k}"), k + 1
    return out


def training_share(budget_s: float, spent_s: float) -> float:
    """Seconds of a command's ``budget_s`` that training may take when ``spent_s`` are already gone:
    the budget less what is kept for the preview and figures (`PREVIEW_SHARE`), never below 0."""
    keep = min(max(PREVIEW_SHARE * budget_s, PREVIEW_LEAST_S), PREVIEW_MOST_S, budget_s / 2)
    return max(budget_s - keep - spent_s, 0.0)


def write_run_figures(model: GenerativeModel, run_dir: Path, splits: Splits, seed: int,
                      seconds: float | None = None) -> Path | None:
    """``samples.png`` (up to 64 images, or 2,000 points over held-out data) or, for a text model,
    ``samples.txt`` (up to 16 decoded samples), and ``loss.png`` of a run; returns the samples' file
    (None when no sample fits). The preview is sized to take about ``seconds`` in all (None: at most
    `genlab.report.preview.PREVIEW_SECONDS` of sampling): fewer samples and sampler steps when the
    measured speed asks for it, which the output (and a scatter's title) says."""
    if world()[0] != 0:  # under torchrun one process draws the pictures
        return None
    device = next(chain(model.parameters(), model.buffers()), torch.zeros(())).device
    g = torch.Generator(device=device).manual_seed(seed)
    text, image = model.spec.kind is Kind.TEXT, model.spec.is_image
    want, least = (TEXT_SAMPLES, 4) if text else (64, 16) if image else (2000, 200)
    allowance = None if seconds is None else seconds - FIGURE_SECONDS
    samples, plan = preview_samples(model, allowance, want=want, least=least, generator=g)
    if plan.cut:
        print(f"preview ({'--max-minutes' if seconds is not None else 'default allowance'}): {plan.note}",
              file=sys.stderr)
    if samples is None:
        print(f"no preview samples; draw them with `genlab sample {run_dir} -n {want} --out "
              f"{'samples.txt' if text else 'samples.png'}`", file=sys.stderr)
        save_run_figures(run_dir, model.name, model.spec, None)
        return None
    if text:
        (run_dir / "samples.txt").write_text(text_of(samples.cpu(), model.spec), encoding="utf-8")
        save_run_figures(run_dir, model.name, model.spec, None)
        return run_dir / "samples.txt"
    save_run_figures(run_dir, model.name, model.spec, samples, reference=splits.test.x[:2000],
                     note=plan.note if plan.cut else "")
    return run_dir / "samples.png"


def _settings_of(items: list[str]) -> dict[str, str]:
    out = {}
    for s in items:
        if "=" not in s:
            raise ValueError(f"--set expects KEY=VALUE, got {s!r}")
        k, v = s.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _status(beat: Heartbeat) -> typing.Callable:
    """A trainer callback that shows the step count in the heartbeat's lines."""
    def cb(trainer: typing.Any, record: dict) -> None:
        beat.status(f"training, step {trainer.step}/{trainer.total_steps or '?'}")
    return cb


def cmd_train(args: argparse.Namespace) -> int:
    """Train a family into a new run directory, then draw its pictures, all within --max-minutes."""
    t_start = getattr(args, "started", None) or time.monotonic()  # main's start: imports count
    file = read_run_config(args.config) if args.config else {"config": {}, "trainer": {}}
    if file.get("family", args.family) != args.family:
        raise ValueError(f"--config {args.config} is for family {file['family']!r}, not {args.family!r}; "
                         f"run `genlab train --config {args.config}` to take the family from the file")
    data = dict(file.get("data") or {})
    data.update({k: v for k, v in (("name", args.data), ("n", args.n)) if v is not None})
    data.setdefault("name", "digits")
    trainer = {**file["trainer"], **dataclass_values(args, TrainConfig)}
    train = settings.build(TrainConfig, trainer, where=args.config or "the command line")
    for key, wanted in (("seed", train.seed), ("val", 0.1), ("test", 0.1)):
        if data.get(key, wanted) != wanted:
            raise ValueError(f"--config {args.config}: data {key}={data[key]!r} differs from {wanted!r}, what "
                             f"genlab train uses ({'the trainer seed' if key == 'seed' else 'its split'}); "
                             f"remove it from the file")
    out = Path(args.out) if args.out else _default_out(args.family, data["name"])
    if out.exists() and (out / "config.json").exists():
        raise ValueError(f"{out} already holds a run; choose another --out or `genlab resume {out}`")
    rank, size = world()
    barrier(size)  # under torchrun: every process has chosen and checked `out` before rank 0 writes there
    budget = None if train.max_minutes is None else 60 * train.max_minutes
    if rank == 0:
        print(f"training {args.family} on {data['name']} -> {out}", file=sys.stderr)
    with computing(args, f"genlab train {args.family}", budget) as beat, name_failed_ranks(out):
        beat.status("training")
        # the budget is the whole command's: training stops early enough to leave the preview its share
        share = None if budget is None else training_share(budget, time.monotonic() - t_start)
        model, splits = train_run(args.family, data["name"], out, config={**file["config"], **_settings_of(args.settings)},
                                  train=train, n=data.get("n"), split_seed=data.get("split_seed", 0),
                                  callbacks=[_status(beat)],
                                  deadline=None if share is None else time.monotonic() + share)
        if rank != 0:  # rank 0 draws the figures and reports; the other processes are done
            return 0
        beat.status("drawing the samples and loss curves")
        shown = write_run_figures(model, out, splits, saved_train_config(out).seed,
                                  None if budget is None else budget - (time.monotonic() - t_start))
    st = io.read_config(out).get("stopped", {})
    print(f"done: {st.get('reason')} after {st.get('step')} steps; " + _validation_words(st))
    print(f"run: {out}" + (f"   samples: {shown}" if shown else ""))
    return 0


def _validation_words(stopped: dict) -> str:
    """The validation figures of a finished run, in words."""
    best, at_stop = stopped.get("best_val_loss"), stopped.get("val_loss_at_stop")
    words = [f"best validation loss {best:.6g}" if best is not None else "no epoch finished: no best validation loss"
             if at_stop is not None else "no validation loss (no validation data, or the family has none)"]
    if at_stop is not None:
        words.append(f"validation loss at the stop {at_stop:.6g}")
    return "; ".join(words)


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue a run from its checkpoint, then redraw its pictures, all within --max-minutes."""
    t_start = getattr(args, "started", None) or time.monotonic()  # main's start: imports count
    budget = None if args.max_minutes is None else 60 * args.max_minutes
    if world()[0] == 0:
        manifest = rundir.read_manifest(args.run)
        print(f"resuming {args.run} from its last committed state ("
              + (f"generation {manifest['generation']})" if manifest else "a run saved before generations)"),
              file=sys.stderr)
    with computing(args, "genlab resume", budget) as beat, name_failed_ranks(args.run):
        beat.status("training")
        share = None if budget is None else training_share(budget, time.monotonic() - t_start)
        model, splits = resume_run(args.run, epochs=args.epochs, max_minutes=args.max_minutes, callbacks=[_status(beat)],
                                   deadline=None if share is None else time.monotonic() + share)
        if world()[0] != 0:  # under torchrun rank 0 draws the figures and reports
            return 0
        beat.status("drawing the samples and loss curves")
        write_run_figures(model, Path(args.run), splits, saved_train_config(args.run).seed,
                          None if budget is None else budget - (time.monotonic() - t_start))
    st = io.read_config(args.run).get("stopped", {})
    print(f"done: {st.get('reason')} after {st.get('step')} steps; run: {args.run}")
    return 0
