"""``genlab``: the command line, generated from the registry and the config dataclasses.

    genlab list
    genlab train FAMILY --data NAME|PATH [--epochs N] [--set key=value ...] [--out DIR]
    genlab resume RUN [--epochs N]
    genlab sample RUN -n N --out FILE.png|.npy|.csv
    genlab eval RUN [--data NAME|PATH] [--split test]
    genlab compare --data NAME|PATH [--families a,b,c] [--budget MINUTES] [--out DIR]
    genlab report RUN
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from .registry import config_fields, families, get_family

EPILOG = "Run `genlab COMMAND --help` for each command's options; `genlab train FAMILY --help` lists a family's settings."


def _type_name(t) -> str:
    return getattr(t, "__name__", str(t)).replace("typing.", "")


def _family_help(name: str) -> str:
    cls = get_family(name)
    lines = [f"{name}: density {cls.density.value}; sampling {cls.sampling}; training {cls.training}.",
             (cls.__doc__ or "").strip().split("\n")[0],
             f"trainer defaults for {name}: epochs={cls.default_epochs}"
             + "".join(f", {k}={v}" for k, v in cls.default_train.items()) + " (flags below override)",
             "", "settings (--set key=value):"]
    for f, t in config_fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        lines.append(f"  {f.name} ({_type_name(t)}, default {default!r}): {f.metadata.get('help', '')}")
    return "\n".join(lines)


def _add_trainer_flags(p: argparse.ArgumentParser) -> None:
    from .train import TrainConfig

    g = p.add_argument_group("trainer")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f.metadata.get("help"))
        else:
            conv = {"epochs": int, "batch_size": int, "patience": _int_or_none, "checkpoint_every": int,
                    "log_every": int, "seed": int, "lr": float, "weight_decay": float, "grad_clip": _float_or_none,
                    "ema": _float_or_none, "max_minutes": _float_or_none}.get(f.name, str)
            g.add_argument(flag, type=conv, default=None, metavar=f.name.upper(),
                           help=f"{f.metadata.get('help', '')} (default: {f.default})")


def _int_or_none(s: str):
    return None if s.lower() == "none" else int(s)


def _float_or_none(s: str):
    return None if s.lower() == "none" else float(s)


def build_parser() -> argparse.ArgumentParser:
    from .data import dataset_names

    p = argparse.ArgumentParser(prog="genlab", description="Train, sample, score and evaluate generative models "
                                "of every family through one interface.", epilog=EPILOG)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("list", help="families with their capabilities; data sets",
                   description="List the registered families (with the capability row of the design table) "
                               "and the named data sets.")

    tp = sub.add_parser("train", help="train a family on a data set into a run directory",
                        description="Train FAMILY on a named data set or a file; writes runs/<name>/ "
                                    "(config.json, model.safetensors, checkpoint, metrics.jsonl, samples.png).",
                        epilog=EPILOG)
    fam = tp.add_subparsers(dest="family", metavar="FAMILY", required=True)
    for name in families():
        fp = fam.add_parser(name, help=(get_family(name).__doc__ or "").strip().split("\n")[0],
                            description=_family_help(name), formatter_class=argparse.RawDescriptionHelpFormatter)
        fp.add_argument("--data", default="digits",
                        help=f"data set name ({', '.join(dataset_names())}) or a path to .npy/.npz/.csv "
                             "or a folder of images (default: digits)")
        fp.add_argument("--n", type=int, default=None, help="use only the first N examples (toys: generate N)")
        fp.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a family setting (repeatable); see the list above")
        fp.add_argument("--out", default=None, help="run directory (default: runs/FAMILY-DATA, never overwritten)")
        _add_trainer_flags(fp)

    rp = sub.add_parser("resume", help="continue a run from its last checkpoint",
                        description="Continue RUN from checkpoint.safetensors exactly where it stopped.")
    rp.add_argument("run", help="run directory")
    rp.add_argument("--epochs", type=int, default=None, help="train up to this many epochs in all")
    rp.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes")

    sp = sub.add_parser("sample", help="draw samples from a trained run",
                        description="Draw N samples from RUN and write them as a PNG grid/scatter, .npy or .csv.")
    sp.add_argument("run", help="run directory")
    sp.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    sp.add_argument("--out", required=True, help="output file: .png, .npy or .csv")
    sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sp.add_argument("--condition", type=int, default=None, help="class label for conditional families")

    _add_eval_parsers(sub)
    _add_translate_parser(sub)
    _add_task_parsers(sub)
    return p


def cmd_list(args) -> int:
    from .data import dataset_names
    from .protocol import Conditional, Energy, Latent

    rows = [("family", "density", "sampling", "training", "latents", "conditional")]
    for name in families():
        cls = get_family(name)
        lat = getattr(cls, "latent_kind", "R^L") if issubclass(cls, Latent) else ("energy" if issubclass(cls, Energy) else "none")
        rows.append((name, cls.density.value, cls.sampling, cls.training, lat, "yes" if issubclass(cls, Conditional) else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("\ndata sets: " + ", ".join(dataset_names()))
    print("or a path: .npy / .npz / .csv, or a folder of PNG/JPEG images")
    return 0


def _default_out(family: str, data: str) -> Path:
    base = Path("runs") / f"{family}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(data).stem or data)}"
    out, k = base, 2
    while out.exists() and any(out.iterdir()):
        out, k = Path(f"{base}-{k}"), k + 1
    return out


def cmd_train(args) -> int:
    from .runs import train_run
    from .train import TrainConfig, train_config

    settings = {}
    for s in args.settings:
        if "=" not in s:
            raise ValueError(f"--set expects KEY=VALUE, got {s!r}")
        k, v = s.split("=", 1)
        settings[k.strip()] = v.strip()
    train = train_config(get_family(args.family), **{f.name: getattr(args, f.name) for f in
                                                      dataclasses.fields(TrainConfig)
                                                      if getattr(args, f.name, None) is not None})
    out = Path(args.out) if args.out else _default_out(args.family, args.data)
    if out.exists() and (out / "config.json").exists():
        raise ValueError(f"{out} already holds a run; choose another --out or `genlab resume {out}`")
    print(f"training {args.family} on {args.data} -> {out}", file=sys.stderr)
    model, splits = train_run(args.family, args.data, out, config=settings, train=train, n=args.n)
    cfg = json.loads((out / "config.json").read_text())
    st = cfg.get("stopped", {})
    print(f"done: {st.get('reason')} after {st.get('step')} steps; best validation loss {st.get('best_val_loss')}")
    print(f"run: {out}   samples: {out / 'samples.png'}")
    return 0


def cmd_resume(args) -> int:
    from .runs import resume_run

    resume_run(args.run, epochs=args.epochs, max_minutes=args.max_minutes)
    cfg = json.loads((Path(args.run) / "config.json").read_text())
    print(f"done: {cfg.get('stopped', {}).get('reason')}; run: {args.run}")
    return 0


def cmd_sample(args) -> int:
    from . import io
    from .report import save_samples

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


def _add_eval_flags(p: argparse.ArgumentParser) -> None:
    from .evaluate import EvalSettings

    g = p.add_argument_group("evaluation")
    for f in dataclasses.fields(EvalSettings):
        if f.name == "seed":
            continue
        flag = "--" + ("eval-" if f.name == "n" else "") + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=f.metadata["help"])
        else:
            g.add_argument(flag, dest=flag[2:].replace("-", "_"), type=float if f.type in ("float", float) else int,
                           default=f.default,
                           help=f"{f.metadata['help']} (default: {f.default})")


def _eval_settings(args, seed: int = 0):
    from .evaluate import EvalSettings

    return EvalSettings(**{f.name: getattr(args, "eval_n" if f.name == "n" else f.name)
                           for f in dataclasses.fields(EvalSettings) if f.name != "seed"}, seed=seed)


def _add_eval_parsers(sub) -> None:
    from .compare import DEFAULT_BUDGET_MINUTES, DEFAULT_FAMILIES

    ep = sub.add_parser("eval", help="every metric a run's family supports, with standard errors",
                        description="Evaluate RUN on the test split of its data (or --data): likelihood (nats, "
                                    "bits/dim), sampling speed, classifier-FID with its real-vs-held-out floor, "
                                    "precision/recall, density/coverage, MMD, memorization, reconstruction. "
                                    "Prints them, lists what cannot be computed with the reason, writes "
                                    "RUN/eval.json.")
    ep.add_argument("run", help="run directory")
    ep.add_argument("--data", default=None, help="data set or path to score instead of the run's test split")
    ep.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split (default test)")
    _add_eval_flags(ep)
    cp = sub.add_parser("compare", help="train families under one budget; write an HTML report",
                        description="Train each family on --data for --budget minutes with the same seed, "
                                    "evaluate each on the test split, write OUT/results.json and OUT/report.html.")
    cp.add_argument("--data", default="digits", help="data set name or path (default: digits)")
    cp.add_argument("--families", default=",".join(DEFAULT_FAMILIES),
                    help=f"comma-separated families (default: {','.join(DEFAULT_FAMILIES)})")
    cp.add_argument("--budget", type=float, default=DEFAULT_BUDGET_MINUTES,
                    help=f"training minutes per family (default: {DEFAULT_BUDGET_MINUTES:g})")
    cp.add_argument("--seed", type=int, default=0, help="seed of splits, initialisation and sampling (default 0)")
    cp.add_argument("--n", type=int, default=None, help="use only the first N examples (toys: generate N)")
    cp.add_argument("--set", dest="settings", action="append", default=[], metavar="FAMILY.KEY=VALUE",
                    help="a family setting, e.g. vae.latent_dim=8 (repeatable)")
    cp.add_argument("--out", default="compare", help="output folder (default: compare)")
    cp.add_argument("--threads", type=int, default=1, help="torch threads for training (default 1: the same for "
                    "every family, and robust on a shared machine)")
    _add_eval_flags(cp)
    rp = sub.add_parser("report", help="write a run's own report.html",
                        description="Write RUN/report.html: metrics (eval.json, computed if missing), samples, "
                                    "loss curves and, for latent families, an interpolation strip.")
    rp.add_argument("run", help="run directory")
    _add_eval_flags(rp)


def _print_eval(result: dict) -> None:
    print(f"{result['family']} on {result['data']} (density {result['density']}, {result['parameters']:,} parameters)")
    floor = result.get("floor", {})
    for k, v in result["metrics"].items():
        if isinstance(v, str):
            continue
        if isinstance(v, int):
            print(f"  {k}: {v}")
            continue
        if k == "log_partition":
            se = f" ± {v['stderr']:.2g} ({v['n']} chains)" if v["method"] == "ais" else ""
            print(f"  log Z ({v['method']}): {v['value']:.4g}{se}")
            continue
        if k == "memorization":
            flag = "  ** MEMORIZES: samples copy the training set **" if v["flagged"] else ""
            print(f"  memorization: distance ratio {v['distance_ratio']['value']:.3f} ± "
                  f"{v['distance_ratio']['stderr']:.3f}, near-copies {v['near_copy_share']['value']:.3f} "
                  f"(fresh data: {v['quantile']:g}){flag}")
            continue
        unit = {"nll_nats": " nats", "bits_per_dim": " bits/dim", "sampling_speed": " samples/s"}.get(k, "")
        name = {"nll_nats": f"NLL ({result['metrics'].get('nll_is')})", "classifier_fid": "classifier-FID"}.get(k, k)
        line = f"  {name}: {v['value']:.4g} ± {(v.get('stderr') or float('nan')):.2g}{unit} (n={v['n']})"
        if k in floor:
            line += f"   [held-out data: {floor[k]['value']:.4g} ± {(floor[k].get('stderr') or float('nan')):.2g}]"
        print(line)
    for k, why in result["not_computed"].items():
        print(f"  not computed: {k}: {why}")


def cmd_eval(args) -> int:
    from .evaluate import evaluate_run

    result = evaluate_run(args.run, data=args.data, split=args.split, settings=_eval_settings(args), verbose=True)
    _print_eval(result)
    print(f"wrote {Path(args.run) / 'eval.json'}")
    return 0


def cmd_compare(args) -> int:
    from .compare import compare

    configs: dict[str, dict] = {}
    for s in args.settings:
        key, eq, value = s.partition("=")
        fam, dot, name = key.partition(".")
        if not eq or not dot:
            raise ValueError(f"--set expects FAMILY.KEY=VALUE (e.g. vae.latent_dim=8), got {s!r}")
        configs.setdefault(fam.strip(), {})[name.strip()] = value.strip()
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    res = compare(args.data, families, args.budget, seed=args.seed, out=args.out, configs=configs, n=args.n,
                  settings=_eval_settings(args, args.seed), threads=args.threads)
    for r in res["families"]:
        if "eval" in r:
            _print_eval(r["eval"])
        else:
            print(f"{r['family']}: {r['error']}")
    print(f"total {res['total_seconds']:.0f} s; wrote {Path(args.out) / 'results.json'} and "
          f"{Path(args.out) / 'report.html'}")
    return 0


def cmd_report(args) -> int:
    from .compare import report_run

    path = report_run(args.run, settings=_eval_settings(args), verbose=True)
    print(f"wrote {path}")
    return 0


def _add_translate_parser(sub) -> None:
    tp = sub.add_parser("translate", help="apply a trained translator (pix2pix, cyclegan) to images",
                        description="Translate INPUT (.png/.jpg: one image; .npy: one or more images on the "
                                    "data's grey levels) with RUN; writes input | output side by side (.png) "
                                    "or the outputs (.npy).")
    tp.add_argument("run", help="run directory of a translator family")
    tp.add_argument("input", help="input image (.png, .jpg) or array (.npy)")
    tp.add_argument("--out", default=None, help="output .png or .npy (default: INPUT_translated.png)")
    tp.add_argument("--direction", default=None, help="cyclegan: b2a (default) or a2b")


def cmd_translate(args) -> int:
    from . import io
    from .models._translation import Translator, read_images
    from .protocol import NotSupported
    from .report.figures import image_grid

    model = io.load(args.run)
    if not isinstance(model, Translator):
        raise NotSupported(f"{model.name} is not a translator; train pix2pix or cyclegan")
    x = read_images(args.input, model.spec)
    y = model.translate(x, args.direction)
    out = Path(args.out) if args.out else Path(args.input).with_name(Path(args.input).stem + "_translated.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, y.numpy())
    elif out.suffix.lower() == ".png":
        from PIL import Image
        pairs = torch.stack([x, y], 1).reshape(-1, *model.spec.event_shape)  # input, output, input, ...
        img = Image.fromarray(image_grid(pairs, model.spec, ncol=2))
        scale = max(1, 320 // max(img.width, img.height))
        img.resize((img.width * scale, img.height * scale), Image.NEAREST).save(out)
    else:
        raise ValueError(f"--out must end in .png or .npy, got {out.name!r}")
    print(f"translated {len(x)} image(s) with {model.name} -> {out}")
    return 0


def _add_task_parsers(sub) -> None:
    op = sub.add_parser("outliers", help="score examples as outliers under a trained run",
                        description="Outlier scores of --data under RUN's model: -log-likelihood (or energy), "
                                    "typicality (Nalisnick et al. 2019), likelihood ratio against a background "
                                    "model (Ren et al. 2019) and input complexity (Serra et al. 2020). Thresholds "
                                    "at --fpr on the run's validation split; AUROC/AUPR against its test split.")
    op.add_argument("run", help="run directory of a family with a likelihood, a bound or an energy")
    op.add_argument("--data", required=True, help="data set name or file to score (same shape as the run's data)")
    op.add_argument("-n", type=int, default=None, help="score only the first N examples")
    op.add_argument("--fpr", type=float, default=0.05, help="false-positive rate of the thresholds (default 0.05)")
    op.add_argument("--background", default="gaussian", help="family of the background model ('' for none)")
    op.add_argument("--compressor", default="png", help="png | webp | zlib | lzma (lossless) for the complexity correction")
    op.add_argument("--out", default=None, help="write every example's scores to this .csv")

    ip = sub.add_parser("impute", help="fill missing entries with draws from p(missing | observed)",
                        description="Impute the entries of --data marked by --mask with RUN's model (exact for "
                                    "gaussian/gmm/bayesnet, ancestral for autoregressive models when the missing "
                                    "entries come last, RePaint for ddpm, Metropolis-within-Gibbs for VAEs (Mattei "
                                    "& Frellsen 2018) and other densities); "
                                    "writes the draws (n_draws, n, ...) as .npy and reports RMSE against --data.")
    ip.add_argument("run", help="run directory")
    ip.add_argument("--data", required=True, help="data set name or file (values under the mask are ignored)")
    ip.add_argument("--mask", required=True, help=".npy of booleans (True = missing), or mcar:RATE")
    ip.add_argument("-n", type=int, default=None, help="only the first N examples")
    ip.add_argument("--draws", type=int, default=5, help="number of imputations (default 5)")
    ip.add_argument("--sweeps", type=int, default=None,
                    help="MCMC / Gibbs sweeps (default: 200 for VAE Metropolis-within-Gibbs, 20 otherwise)")
    ip.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ip.add_argument("--out", default=None, help="write the draws to this .npy")

    lp = sub.add_parser("interpolate", help="decode paths between encoded examples; attribute vectors",
                        description="Linear or spherical interpolation between the codes of pairs of examples "
                                    "(the run's test split, or --data) of a Latent family; with --attribute A,B, "
                                    "add alpha * (mean code of class A - mean code of class B) to examples instead.")
    lp.add_argument("run", help="run directory of a Latent family")
    lp.add_argument("--data", default=None, help="data set name or file (default: the run's test split)")
    lp.add_argument("--pairs", type=int, default=4, help="pairs (or examples for --attribute), default 4")
    lp.add_argument("--steps", type=int, default=8, help="points along each path (default 8)")
    lp.add_argument("--kind", default="slerp", help="slerp (default) or lerp")
    lp.add_argument("--attribute", default=None, help="A,B: class labels whose mean codes give the vector")
    lp.add_argument("--out", required=True, help="output .png (strips) or .npy")
    _add_compress_parsers(sub)


def _add_compress_parsers(sub) -> None:
    what = ("Entropy coding with RUN's model (constriction ANS): the chain rule for exact models over "
            "discrete data (autoregressive, bayesnet, gaussian/gmm discretized to the levels), bits-back "
            "coding for VAEs. The file records the model's weight fingerprint and checksums; decompress "
            "needs the same run.")
    cp = sub.add_parser("compress", help="compress discrete data losslessly with a trained run",
                        description=what)
    cp.add_argument("run", help="run directory (its model must code discrete data)")
    cp.add_argument("input", help=".npy of integer levels shaped (n, *event_shape) or (n, D); or a data set "
                                  "name / file as for --data elsewhere (then decompress writes int64)")
    cp.add_argument("output", help="compressed file to write")
    cp.add_argument("--seed", type=int, default=0, help="seed of the bits-back initial bits (default 0)")
    dp = sub.add_parser("decompress", help="restore data compressed by `genlab compress`", description=what)
    dp.add_argument("run", help="the run directory that compressed the file")
    dp.add_argument("input", help="compressed file")
    dp.add_argument("output", help=".npy to write (same dtype and shape as a .npy input)")
    # registered here so that the compress commands stay one block of this file
    COMMANDS.update(compress=cmd_compress, decompress=cmd_decompress)


def cmd_compress(args) -> int:
    from . import io
    from .tasks.compress import compress, method_for
    from .tasks.runs import load_like

    model = io.load(args.run)
    if args.input.lower().endswith(".npy"):
        arr = np.load(args.input, allow_pickle=False)
        note = {"dtype": arr.dtype.str, "shape": list(arr.shape)}
    else:
        arr, note = load_like(model, args.input)[0], {}
    data = compress(model, arr, seed=args.seed, note=note)
    Path(args.output).write_bytes(data)
    n_values = int(np.prod(arr.shape))
    print(f"{method_for(model)} coding with {model.name}: {n_values} values -> {len(data)} bytes "
          f"({8 * len(data) / n_values:.4g} bits/value) in {args.output}")
    return 0


def cmd_decompress(args) -> int:
    from . import io
    from .tasks.compress import decompress, read_header

    model = io.load(args.run)
    data = Path(args.input).read_bytes()
    note = read_header(data).get("note", {})
    x = decompress(model, data).numpy()
    x = x.astype(note["dtype"]).reshape(note["shape"]) if "dtype" in note else x.astype(np.int64)
    np.save(args.output, x, allow_pickle=False)
    print(f"decompressed {len(x)} examples of shape {tuple(x.shape[1:])} to {args.output}")
    return 0


def cmd_outliers(args) -> int:
    from .tasks.outliers import detect_outliers

    res = detect_outliers(args.run, args.data, fpr=args.fpr, background=args.background or None,
                          compressor=args.compressor, n=args.n)
    print(f"{'method':<12} {'threshold':>10} {'flagged':>8} {'AUROC':>7} {'AUPR':>7}   (AUROC: run's test split vs --data)")
    for k, m in res["methods"].items():
        print(f"{k:<12} {m['threshold']:>10.4g} {m['flagged']:>8.3f} {m['auroc']:>7.3f} {m['aupr']:>7.3f}")
    if args.out:
        names = list(res["scores"])
        cols = np.stack([res["scores"][k].numpy() for k in names], 1)
        np.savetxt(args.out, cols, delimiter=",", header=",".join(names), comments="", fmt="%.6g")
        print(f"wrote {len(cols)} rows of scores to {args.out}")
    return 0


def cmd_impute(args) -> int:
    from . import io
    from .tasks.impute import impute, method_for, read_mask
    from .tasks.runs import load_like

    model = io.load(args.run)
    x, _ = load_like(model, args.data, args.n)
    mask = read_mask(args.mask, tuple(x.shape), args.seed)
    draws = impute(model, x, mask, args.draws, torch.Generator().manual_seed(args.seed), sweeps=args.sweeps)
    err = (draws.double().mean(0) - x.double())[mask]
    print(f"{method_for(model, mask)} imputation of {int(mask.sum())} entries in {len(x)} examples, {args.draws} draws: "
          f"RMSE of their mean vs --data {float(err.pow(2).mean().sqrt()):.4g}, "
          f"spread (sd across draws) {float(draws.double().std(0)[mask].mean()) if args.draws > 1 else 0:.4g}")
    if args.out:
        np.save(args.out, draws.numpy())
        print(f"wrote draws of shape {tuple(draws.shape)} to {args.out}")
    return 0


def cmd_interpolate(args) -> int:
    from .tasks.interpolate import apply_attribute, attribute_vector, interpolate, save_strips
    from .tasks.runs import load_like, run_model_and_splits

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
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, rows.numpy())
    elif out.suffix.lower() == ".png":
        save_strips(rows, model.spec, str(out))
    else:
        raise ValueError(f"--out must end in .png or .npy, got {out.name!r}")
    print(f"{what}: {tuple(rows.shape)} -> {out}")
    return 0


COMMANDS = {"list": cmd_list, "train": cmd_train, "resume": cmd_resume, "sample": cmd_sample, "eval": cmd_eval}
COMMANDS["translate"] = cmd_translate
COMMANDS.update(compare=cmd_compare, report=cmd_report)
COMMANDS.update(outliers=cmd_outliers, impute=cmd_impute, interpolate=cmd_interpolate)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # `genlab ... | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: the last checkpoint is kept; continue with `genlab resume RUN`", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotImplementedError, RuntimeError) as e:
        print("genlab: error: " + textwrap.fill(str(e), 100, subsequent_indent="  "), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
