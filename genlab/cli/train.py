"""``genlab list | train | resume | sample``: the families, and runs made, continued and sampled.

``genlab train`` has one sub-command per registered family; its settings (``--set``) come from the
family's config dataclass and its trainer flags from `TrainConfig`, so a new family or a new
trainer setting appears here without an edit.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import typing
from itertools import chain
from pathlib import Path

import numpy as np
import torch

from .. import settings
from ..data import Splits, dataset_names
from ..data.spec import Kind
from ..protocol import Conditional, Decoder, Energy, GenerativeModel
from ..registry import config_fields, families, get_family
from ..report import save_run_figures, save_samples
from ..runs import resume_run, saved_train_config, train_run
from ..train import TrainConfig
from ..train.distributed import world
from .flags import add_dataclass_flags, dataclass_values, field_default

EPILOG = ("Run `genlab COMMAND --help` for each command's options; `genlab train FAMILY --help` lists "
          "a family's settings.")


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
    """Add ``list``, ``train``, ``resume`` and ``sample`` to the sub-command parsers ``sub``."""
    lp = sub.add_parser("list", help="families with their capabilities; data sets",
                        description="List the registered families (with the capability row of the design table) "
                                    "and the named data sets.")
    lp.set_defaults(handler=cmd_list)

    tp = sub.add_parser("train", help="train a family on a data set into a run directory",
                        description="Train FAMILY on a named data set or a file; writes runs/<name>/ "
                                    "(config.json, model.safetensors, checkpoint, metrics.jsonl, samples.png).",
                        epilog=EPILOG)
    tp.set_defaults(handler=cmd_train)
    fam = tp.add_subparsers(dest="family", metavar="FAMILY", required=True)
    for name in families():
        cls = get_family(name)
        fp = fam.add_parser(name, help=_summary(cls), description=family_help(name),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        fp.add_argument("--data", default="digits",
                        help=f"data set name ({', '.join(dataset_names())}) or a path to .npy/.npz/.csv "
                             "or a folder of images, or image sets joined by + for unpaired domains "
                             "(digits+mnist5k) (default: digits)")
        fp.add_argument("--n", type=int, default=None, help="use only the first N examples (toys: generate N)")
        fp.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a family setting (repeatable); see the list above")
        fp.add_argument("--out", default=None, help="run directory (default: runs/FAMILY-DATA, never overwritten)")
        add_dataclass_flags(fp.add_argument_group("trainer"), TrainConfig, unset=True,
                            defaults=dataclasses.asdict(TrainConfig().for_family(cls)))

    rp = sub.add_parser("resume", help="continue a run from its last checkpoint",
                        description="Continue RUN from checkpoint.safetensors exactly where it stopped.")
    rp.set_defaults(handler=cmd_resume)
    rp.add_argument("run", help="run directory")
    rp.add_argument("--epochs", type=int, default=None, help="train up to this many epochs in all")
    rp.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes")

    sp = sub.add_parser("sample", help="draw samples from a trained run",
                        description="Draw N samples from RUN and write them as a PNG grid/scatter, .npy or .csv.")
    sp.set_defaults(handler=cmd_sample)
    sp.add_argument("run", help="run directory")
    sp.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    sp.add_argument("--out", required=True, help="output file: .png, .npy or .csv")
    sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sp.add_argument("--condition", type=int, default=None, help="class label for conditional families")


def _kinds(cls: type[GenerativeModel]) -> str:
    if cls.data_kinds >= frozenset(Kind):
        return "any"
    return ",".join(k.value for k in Kind if k in cls.data_kinds)


def cmd_list(args: argparse.Namespace) -> int:
    """Print the capability table of every family and the named data sets."""
    rows = [("family", "row of the table", "density", "sampling", "training", "latents", "conditional",
             "compare", "data")]
    for name in families():
        cls = get_family(name)
        # codes a model decodes (an encoder is not needed to have them: a GAN's generator)
        lat = getattr(cls, "latent_kind", "R^L") if issubclass(cls, Decoder) else (
            "energy" if issubclass(cls, Energy) else "none")
        compare = (f"{cls.compare_minutes:g} min" + (", default" if vars(cls).get("in_default_compare") else ""))
        rows.append((name, cls.taxonomy or "-", cls.density.value, cls.sampling, cls.training, lat,
                     "yes" if issubclass(cls, Conditional) else "no", compare, _kinds(cls)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("\ncompare: the family's training budget in `genlab compare`; default: in its default set "
          "(one family per row of the table, plus baselines)")
    print("data sets: " + ", ".join(dataset_names()))
    print("or a path: .npy / .npz / .csv, or a folder of PNG/JPEG images")
    return 0


def _default_out(family: str, data: str) -> Path:
    base = Path("runs") / f"{family}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(data).stem or data)}"
    out, k = base, 2
    while out.exists() and any(out.iterdir()):
        out, k = Path(f"{base}-{k}"), k + 1
    return out


def write_run_figures(model: GenerativeModel, run_dir: Path, splits: Splits, seed: int) -> None:
    """``samples.png`` (64 images, or 2,000 points over held-out data) and ``loss.png`` of a run."""
    if world()[0] != 0:  # under torchrun one process draws the pictures
        return
    device = next(chain(model.parameters(), model.buffers()), torch.zeros(())).device
    g = torch.Generator(device=device).manual_seed(seed)
    samples = model.sample(64 if model.spec.is_image else 2000, generator=g)
    save_run_figures(run_dir, model.name, model.spec, samples, reference=splits.test.x[:2000])


def cmd_train(args: argparse.Namespace) -> int:
    """Train a family into a new run directory, then draw its pictures."""
    settings = {}
    for s in args.settings:
        if "=" not in s:
            raise ValueError(f"--set expects KEY=VALUE, got {s!r}")
        k, v = s.split("=", 1)
        settings[k.strip()] = v.strip()
    train = TrainConfig(**dataclass_values(args, TrainConfig))
    out = Path(args.out) if args.out else _default_out(args.family, args.data)
    if out.exists() and (out / "config.json").exists():
        raise ValueError(f"{out} already holds a run; choose another --out or `genlab resume {out}`")
    print(f"training {args.family} on {args.data} -> {out}", file=sys.stderr)
    model, splits = train_run(args.family, args.data, out, config=settings, train=train, n=args.n)
    write_run_figures(model, out, splits, saved_train_config(out).seed)
    st = json.loads((out / "config.json").read_text()).get("stopped", {})
    print(f"done: {st.get('reason')} after {st.get('step')} steps; best validation loss {st.get('best_val_loss')}")
    print(f"run: {out}   samples: {out / 'samples.png'}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue a run from its checkpoint, then redraw its pictures."""
    model, splits = resume_run(args.run, epochs=args.epochs, max_minutes=args.max_minutes)
    write_run_figures(model, Path(args.run), splits, saved_train_config(args.run).seed)
    cfg = json.loads((Path(args.run) / "config.json").read_text())
    print(f"done: {cfg.get('stopped', {}).get('reason')}; run: {args.run}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Draw samples from a run into a .png, .npy or .csv file."""
    from .. import io

    model = io.load(args.run)
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npy", ".csv"):
        raise ValueError(f"--out must end in .png, .npy or .csv, got {out.name!r}")
    g = torch.Generator().manual_seed(args.seed)
    x = model.sample(args.n, condition=args.condition, generator=g)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        save_samples(x, model.spec, out, title=f"{model.name} samples")
    elif out.suffix.lower() == ".npy":
        np.save(out, x.numpy())
    else:
        header = ",".join(model.spec.feature_names) if model.spec.feature_names else ""
        np.savetxt(out, x.reshape(len(x), -1).numpy(), delimiter=",", header=header, comments="", fmt="%.6g")
    print(f"wrote {args.n} samples to {out}")
    return 0
