"""``genlab sample``: draw samples from a trained run into a file outside it: a picture (.png), an
array (.npy, .csv) or, for text models, the text itself (.txt)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_compute_flags, computing, outside_run, resolve_device

SUFFIXES = (".png", ".npy", ".csv", ".txt")
TEXT_HEADER = "--- sample {i} ---"  # the line before each sample in a .txt file


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``sample`` to the sub-command parsers ``sub``."""
    sp = sub.add_parser("sample", help="draw samples from a trained run (text models write text)",
                        description="Draw N samples from RUN and write them as a PNG grid/scatter, .npy or .csv, "
                                    "or for a text model as text (.txt: each sample after a line "
                                    f"'{TEXT_HEADER.format(i='I')}'). The run is only read: --out must lie "
                                    "outside it.")
    sp.set_defaults(handler=cmd_sample)
    sp.add_argument("run", help="run directory")
    sp.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    sp.add_argument("--out", required=True, help="output file: .png, .npy, .csv, or .txt for text models")
    sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sp.add_argument("--condition", type=int, default=None, help="class label for conditional families")
    add_compute_flags(sp, device=True)


def text_of(samples, spec) -> str:
    """(n, seq_len) token ids of a text model -> the decoded samples, each after its header line."""
    from ..data.text import vocab_of

    vocab = vocab_of(spec)
    return "".join(f"{TEXT_HEADER.format(i=i)}\n{vocab.decode(s)}\n" for i, s in enumerate(samples))


def cmd_sample(args: argparse.Namespace) -> int:
    """Draw samples from a run into a .png, .npy, .csv or .txt file."""
    import numpy as np
    import torch

    from .. import io
    from ..data.spec import Kind

    out = outside_run(args.out, args.run)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"--out must end in {', '.join(SUFFIXES)}, got {out.name!r}")
    if args.n < 1:
        raise ValueError(f"-n must be at least 1, got {args.n}")
    device = resolve_device(args.device)
    with computing(args, "genlab sample") as beat:
        model = io.load(args.run, map_location=device)
        is_text = model.spec.kind is Kind.TEXT
        if suffix == ".txt" and not is_text:
            raise ValueError(f"--out {out.name}: .txt holds the samples of text models; {model.name} models "
                             f"{model.spec.kind.value} data: write .png, .npy or .csv")
        if suffix == ".png" and is_text:
            raise ValueError(f"--out {out.name}: a text model's samples are text; write .txt (or .npy / .csv "
                             "of character ids)")
        beat.status(f"drawing {args.n} samples")
        g = torch.Generator(device=device).manual_seed(args.seed)
        x = model.sample(args.n, condition=args.condition, generator=g).cpu()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".txt":
        Path(out).write_text(text_of(x, model.spec), encoding="utf-8")
    elif suffix == ".png":
        from ..report import save_samples
        save_samples(x, model.spec, out, title=f"{model.name} samples")
    elif suffix == ".npy":
        np.save(out, x.numpy())
    else:
        header = ",".join(model.spec.feature_names) if model.spec.feature_names else ""
        np.savetxt(out, x.reshape(len(x), -1).numpy(), delimiter=",", header=header, comments="", fmt="%.6g")
    print(f"wrote {args.n} samples to {out}")
    return 0
