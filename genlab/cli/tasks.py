"""``genlab outliers | impute | interpolate | translate | compress | decompress``: trained runs
put to work. Each command loads a run, calls the task function its model's capabilities allow
(`genlab.tasks`), and writes the result; pictures are drawn with `genlab.report`."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import io
from ..models._translation import read_images
from ..protocol import NotSupported, Translator
from ..registry import families, get_family
from ..report import save_strips
from ..tasks.compress import compress, decompress, read_header
from ..tasks.compress import method_for as coding_method
from ..tasks.impute import impute, read_mask
from ..tasks.impute import method_for as imputation_method
from ..tasks.interpolate import PATHS, apply_attribute, attribute_vector, interpolate
from ..tasks.outliers import COMPRESSORS, detect_outliers
from ..tasks.runs import load_like, run_model_and_splits
from .common import add_compute_flags, computing
from .parser import COMMANDS

_CODING = ("Entropy coding with RUN's model (constriction ANS): the chain rule for exact models over "
           "discrete data (autoregressive, bayesnet, gaussian/gmm discretized to the levels), bits-back "
           "coding for VAEs. The file records the model's weight fingerprint and checksums; decompress "
           "needs the same run.")


def _translators() -> list[str]:
    return [f for f in families() if issubclass(get_family(f), Translator)]


def _computing(handler: Callable[[argparse.Namespace], int], desc: str) -> Callable[[argparse.Namespace], int]:
    """``handler`` run with ``--threads`` applied and a progress heartbeat."""
    def run(args: argparse.Namespace) -> int:
        with computing(args, desc):
            return handler(args)
    return run


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the task commands to the sub-command parsers ``sub``."""
    op = sub.add_parser("outliers", help=COMMANDS["outliers"].help,
                        description="Outlier scores of --data under RUN's model: -log-likelihood (or energy), "
                                    "typicality (Nalisnick et al. 2019), likelihood ratio against a background "
                                    "model (Ren et al. 2019) and input complexity (Serra et al. 2020). Thresholds "
                                    "at --fpr on the run's validation split; AUROC/AUPR against its test split.")
    op.set_defaults(handler=_computing(cmd_outliers, "genlab outliers"))
    add_compute_flags(op)
    op.add_argument("run", help="run directory of a family with a likelihood, a bound or an energy")
    op.add_argument("--data", required=True, help="data set name or file to score (same shape as the run's data)")
    op.add_argument("-n", type=int, default=None, help="score only the first N examples")
    op.add_argument("--fpr", type=float, default=0.05, help="false-positive rate of the thresholds (default 0.05)")
    op.add_argument("--background", default="gaussian", help="family of the background model ('' for none)")
    op.add_argument("--compressor", default=COMPRESSORS[0], choices=COMPRESSORS,
                    help=f"lossless compressor of the complexity correction (default {COMPRESSORS[0]})")
    op.add_argument("--out", default=None, help="write every example's scores to this .csv")

    ip = sub.add_parser("impute", help=COMMANDS["impute"].help,
                        description="Impute the entries of --data marked by --mask with RUN's model (exact for "
                                    "gaussian/gmm/bayesnet, ancestral for autoregressive models when the missing "
                                    "entries come last, RePaint for ddpm, Metropolis-within-Gibbs for VAEs (Mattei "
                                    "& Frellsen 2018) and other densities); "
                                    "writes the draws (n_draws, n, ...) as .npy and reports RMSE against --data.")
    ip.set_defaults(handler=_computing(cmd_impute, "genlab impute"))
    add_compute_flags(ip)
    ip.add_argument("run", help="run directory")
    ip.add_argument("--data", required=True, help="data set name or file (values under the mask are ignored)")
    ip.add_argument("--mask", required=True, help=".npy of booleans (True = missing), or mcar:RATE")
    ip.add_argument("-n", type=int, default=None, help="only the first N examples")
    ip.add_argument("--draws", type=int, default=5, help="number of imputations (default 5)")
    ip.add_argument("--sweeps", type=int, default=None,
                    help="MCMC / Gibbs sweeps (default: 200 for VAE Metropolis-within-Gibbs, 20 otherwise)")
    ip.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ip.add_argument("--out", default=None, help="write the draws to this .npy")

    lp = sub.add_parser("interpolate", help=COMMANDS["interpolate"].help,
                        description="Linear or spherical interpolation between the codes of pairs of examples "
                                    "(the run's test split, or --data) of a Latent family; with --attribute A,B, "
                                    "add alpha * (mean code of class A - mean code of class B) to examples instead.")
    lp.set_defaults(handler=_computing(cmd_interpolate, "genlab interpolate"))
    add_compute_flags(lp)
    lp.add_argument("run", help="run directory of a Latent family")
    lp.add_argument("--data", default=None, help="data set name or file (default: the run's test split)")
    lp.add_argument("--pairs", type=int, default=4, help="pairs (or examples for --attribute), default 4")
    lp.add_argument("--steps", type=int, default=8, help="points along each path (default 8)")
    lp.add_argument("--kind", default=PATHS[0], choices=PATHS, help=f"path between codes (default {PATHS[0]})")
    lp.add_argument("--attribute", default=None, help="A,B: class labels whose mean codes give the vector")
    lp.add_argument("--out", required=True, help="output .png (strips) or .npy")

    tp = sub.add_parser("translate", help=COMMANDS["translate"].help,
                        description="Translate INPUT (.png/.jpg: one image; .npy: one or more images on the "
                                    "data's grey levels) with RUN; writes input | output side by side (.png) "
                                    "or the outputs (.npy).")
    tp.set_defaults(handler=_computing(cmd_translate, "genlab translate"))
    add_compute_flags(tp)
    tp.add_argument("run", help="run directory of a translator family")
    tp.add_argument("input", help="input image (.png, .jpg) or array (.npy)")
    tp.add_argument("--out", default=None, help="output .png or .npy (default: INPUT_translated.png)")
    ways = "; ".join(f"{f}: {' or '.join(get_family(f).directions)}" for f in _translators())
    tp.add_argument("--direction", default=None, help=f"which way to translate ({ways}; default: the first)")

    cp = sub.add_parser("compress", help=COMMANDS["compress"].help,
                        description=_CODING)
    cp.set_defaults(handler=_computing(cmd_compress, "genlab compress"))
    add_compute_flags(cp)
    cp.add_argument("run", help="run directory (its model must code discrete data)")
    cp.add_argument("input", help=".npy of integer levels shaped (n, *event_shape) or (n, D); or a data set "
                                  "name / file as for --data elsewhere (then decompress writes int64)")
    cp.add_argument("output", help="compressed file to write")
    cp.add_argument("--seed", type=int, default=0, help="seed of the bits-back initial bits (default 0)")
    dp = sub.add_parser("decompress", help=COMMANDS["decompress"].help, description=_CODING)
    dp.set_defaults(handler=_computing(cmd_decompress, "genlab decompress"))
    add_compute_flags(dp)
    dp.add_argument("run", help="the run directory that compressed the file")
    dp.add_argument("input", help="compressed file")
    dp.add_argument("output", help=".npy to write (same dtype and shape as a .npy input)")


def cmd_outliers(args: argparse.Namespace) -> int:
    """Score --data as outliers under a run; print the table of methods."""
    res = detect_outliers(args.run, args.data, fpr=args.fpr, background=args.background or None,
                          compressor=args.compressor, n=args.n)
    print(f"{'method':<12} {'threshold':>10} {'flagged':>8} {'AUROC':>7} {'AUPR':>7}"
          "   (AUROC: run's test split vs --data)")
    for k, m in res["methods"].items():
        print(f"{k:<12} {m['threshold']:>10.4g} {m['flagged']:>8.3f} {m['auroc']:>7.3f} {m['aupr']:>7.3f}")
    if args.out:
        names = list(res["scores"])
        cols = np.stack([res["scores"][k].numpy() for k in names], 1)
        np.savetxt(args.out, cols, delimiter=",", header=",".join(names), comments="", fmt="%.6g")
        print(f"wrote {len(cols)} rows of scores to {args.out}")
    return 0


def cmd_impute(args: argparse.Namespace) -> int:
    """Draw imputations of the masked entries of --data; report their error and spread."""
    model = io.load(args.run)
    x, _ = load_like(model, args.data, args.n)
    mask = read_mask(args.mask, tuple(x.shape), args.seed)
    draws = impute(model, x, mask, args.draws, torch.Generator().manual_seed(args.seed), sweeps=args.sweeps)
    err = (draws.double().mean(0) - x.double())[mask]
    print(f"{imputation_method(model, mask)} imputation of {int(mask.sum())} entries in {len(x)} examples, "
          f"{args.draws} draws: RMSE of their mean vs --data {float(err.pow(2).mean().sqrt()):.4g}, "
          f"spread (sd across draws) {float(draws.double().std(0)[mask].mean()) if args.draws > 1 else 0:.4g}")
    if args.out:
        np.save(args.out, draws.numpy())
        print(f"wrote draws of shape {tuple(draws.shape)} to {args.out}")
    return 0


def _write_rows(rows: torch.Tensor, spec, out: Path, size: int) -> None:
    """(n_rows, per_row, *event_shape) images as a .npy, or as strips in a .png."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, rows.numpy())
    elif out.suffix.lower() == ".png":
        save_strips(rows, spec, out, size=size)
    else:
        raise ValueError(f"--out must end in .png or .npy, got {out.name!r}")


def cmd_interpolate(args: argparse.Namespace) -> int:
    """Decode interpolation paths (or attribute shifts) between codes; write strips or an array."""
    model, splits = run_model_and_splits(args.run)
    if args.data:
        x, y = load_like(model, args.data)
    elif splits is not None:
        x, y = splits.test.x, splits.test.y
    else:
        raise ValueError(f"{args.run} does not record its data; pass --data")
    if args.attribute:
        a, b = (int(v) for v in args.attribute.split(","))
        if y is None:
            raise ValueError("--attribute needs labelled data")
        vec = attribute_vector(model, x, y, a, b)
        alphas = torch.linspace(-1, 1, args.steps).tolist()
        rows = apply_attribute(model, x[y == b][:args.pairs], vec, alphas)
        what = f"class {b} examples + alpha * (mean code {a} - mean code {b}), alpha = -1 .. 1"
    else:
        n = min(args.pairs, len(x) // 2)
        rows = interpolate(model, x[:n], x[n:2 * n], args.steps, args.kind)
        what = f"{args.kind} between {n} pairs of codes"
    out = Path(args.out)
    _write_rows(rows, model.spec, out, size=480)
    print(f"{what}: {tuple(rows.shape)} -> {out}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    """Translate images with a run of a `Translator` family."""
    model = io.load(args.run)
    if not isinstance(model, Translator):
        raise NotSupported(f"{model.name} is not a translator; train one of: {', '.join(_translators())}")
    x = read_images(args.input, model.spec)
    y = model.translate(x, args.direction)
    out = Path(args.out) if args.out else Path(args.input).with_name(Path(args.input).stem + "_translated.png")
    if out.suffix.lower() == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, y.numpy())
    else:
        _write_rows(torch.stack([x, y], 1), model.spec, out, size=320)  # each row: input | output
    print(f"translated {len(x)} image(s) with {model.name} -> {out}")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    """Entropy-code data with a run's model."""
    model = io.load(args.run)
    if args.input.lower().endswith(".npy"):
        arr = np.load(args.input, allow_pickle=False)
        note = {"dtype": arr.dtype.str, "shape": list(arr.shape)}
    else:
        arr, note = load_like(model, args.input)[0], {}
    data = compress(model, arr, seed=args.seed, note=note)
    Path(args.output).write_bytes(data)
    n_values = int(np.prod(arr.shape))
    print(f"{coding_method(model)} coding with {model.name}: {n_values} values -> {len(data)} bytes "
          f"({8 * len(data) / n_values:.4g} bits/value) in {args.output}")
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    """Restore data coded by `genlab compress` with the same run."""
    model = io.load(args.run)
    data = Path(args.input).read_bytes()
    note = read_header(data).get("note", {})
    x = decompress(model, data).numpy()
    x = x.astype(note["dtype"]).reshape(note["shape"]) if "dtype" in note else x.astype(np.int64)
    np.save(args.output, x, allow_pickle=False)
    print(f"decompressed {len(x)} examples of shape {tuple(x.shape[1:])} to {args.output}")
    return 0
