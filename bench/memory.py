"""Memory that does not grow with the data: peak resident memory and examples/s of training on
streamed image folders of growing size, a streamed 1M x 64 ``.npy``, and the in-memory path.

    python -m bench.memory [--sizes 10000,50000,200000] [--families realnvp,vae] [--workers 0,2]
                           [--steps 60] [--batch 128] [--npy-rows 1000000] [--dir /tmp]

The image folders hold 28x28 grey PNGs made at bench time from Fashion-MNIST (``fashion-mnist``;
``mnist5k`` when its Debian package is missing, said in the output), each a random horizontal
flip and a shift of up to 2 pixels of a training image, in one subfolder per class; the ``.npy``
holds 1M rows of a 64-d low-rank Gaussian. All are written under a temporary folder and deleted
at the end. Each configuration trains the family's defaults for ``--steps`` steps of ``--batch``
in a fresh process (one torch thread; no validation): peak RSS of the training process
(``VmHWM``) and of its largest DataLoader worker (``RUSAGE_CHILDREN``), examples/s after the
first 10 steps, and the seconds to open the source (the spec pass: image headers, one pass over
the array). Before writing the larger folders the time to write 10k files is measured and a size
whose estimate exceeds ``--max-write-minutes`` is skipped (said in the output).
Results: bench/results/memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _child(args: argparse.Namespace) -> None:
    """One configuration, in this fresh process; prints one JSON line."""
    import torch
    import genlab
    from genlab.data import load_dataset
    from genlab.train import TrainConfig, Trainer
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds = load_dataset(args.source, stream=args.mode == "stream")
    opened = time.perf_counter() - t0
    x, y = (ds.x, None) if args.mode == "stream" else (ds.x, ds.y)
    model = genlab.make(args.family, ds.spec, seed=0)
    times: list[float] = []

    def clock(trainer, record):
        times.append(time.perf_counter())
        if record["step"] >= args.steps:
            trainer.request_stop("bench steps")

    cfg = TrainConfig(epochs=1000, batch_size=args.batch, patience=None, progress=False, threads=1,
                      workers=args.workers, device="cpu", checkpoint_every=10**9)
    Trainer(model, cfg, callbacks=[clock]).fit(x, y)
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"peak_rss_mb": hwm / 1024, "worker_peak_rss_mb": worker / 1024 if args.workers else None,
                      "examples_per_s": (len(times) - 10) * args.batch / (times[-1] - times[9]),
                      "open_s": opened, "n": len(ds)}))


def _images(n_base: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    from genlab.data import load_dataset
    try:
        ds, name = load_dataset("fashion-mnist"), "fashion-mnist"
    except (FileNotFoundError, ValueError):
        ds, name = load_dataset("mnist5k"), "mnist5k (fashion-mnist is not installed)"
    return ds.x[:n_base, 0].numpy().astype(np.uint8), ds.y[:n_base].numpy(), name


def write_folder(root: Path, n: int, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """``n`` PNGs: flipped / shifted copies of ``images``; returns the seconds it took."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for k in set(labels.tolist()):
        (root / f"class{k}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        j = i % len(images)
        a = images[j][:, ::-1] if rng.random() < 0.5 else images[j]
        dy, dx = rng.integers(-2, 3, size=2)
        a = np.roll(a, (dy, dx), axis=(0, 1))
        Image.fromarray(np.ascontiguousarray(a), mode="L").save(root / f"class{labels[j]}" / f"{i:07d}.png",
                                                                compress_level=1)
    return time.perf_counter() - t0


def write_npy(path: Path, rows: int, dim: int = 64, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(8, dim)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    for s in range(0, rows, 100_000):
        k = min(100_000, rows - s)
        out[s:s + k] = rng.normal(size=(k, 8)).astype(np.float32) @ w + 0.1 * rng.normal(size=(k, dim))
    out.flush()
    del out


def _run(source: str, family: str, mode: str, workers: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "bench.memory", "--child", "--source", source, "--family", family,
           "--mode", mode, "--workers", str(workers), "--steps", str(args.steps), "--batch", str(args.batch)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    return {**out, "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--source"), ap.add_argument("--family"), ap.add_argument("--mode")
    ap.add_argument("--sizes", default="10000,50000,200000")
    ap.add_argument("--families", default="realnvp,vae")
    ap.add_argument("--workers", default="0,2")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--npy-rows", type=int, default=1_000_000)
    ap.add_argument("--max-write-minutes", type=float, default=10.0)
    ap.add_argument("--dir", default=None, help="where the temporary data go (default: the system's temp dir)")
    args = ap.parse_args()
    if args.child:
        args.workers = int(args.workers)
        return _child(args)
    families, workers = args.families.split(","), [int(w) for w in args.workers.split(",")]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="genlab-bench-memory-", dir=args.dir))
    try:
        images, labels, source_name = _images(None)
        print(f"images from {source_name}; data under {tmp}", flush=True)
        per_file = None
        for n in sizes:
            folder = tmp / f"folder{n}"
            if per_file is not None and per_file * n > 60 * args.max_write_minutes:
                print(f"skip {n:,} files: writing them would take about {per_file * n / 60:.0f} min "
                      f"(measured {per_file * 1e3:.2f} ms a file)", flush=True)
                continue
            secs = write_folder(folder, n, images, labels)
            per_file = per_file or secs / n
            print(f"wrote {n:,} PNGs in {secs:.0f} s", flush=True)
            modes = [("memory", 0)] if n == min(sizes) else []
            for family in families:
                for mode, w in modes + [("stream", w) for w in workers]:
                    r = _run(str(folder), family, mode, w, args)
                    rows.append({"data": f"folder {n // 1000}k", "family": family, "path": mode, "workers": w,
                                 **r, "write_s": secs, "source": source_name})
                    print(json.dumps(rows[-1]), flush=True)
            shutil.rmtree(folder)
        if args.npy_rows:
            npy = tmp / "x.npy"
            write_npy(npy, args.npy_rows)
            for family in families:
                for w in workers:
                    r = _run(str(npy), family, "stream", w, args)
                    rows.append({"data": f"npy {args.npy_rows // 1000}k x 64", "family": family, "path": "stream",
                                 "workers": w, **r})
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from bench.common import print_table, write_results
    print_table(rows, ["data", "family", "path", "workers", "peak_rss_mb", "worker_peak_rss_mb",
                       "examples_per_s", "open_s", "n"])
    write_results("memory", rows, "python -m bench.memory " + " ".join(sys.argv[1:]),
                  key=("data", "family", "path", "workers"))


if __name__ == "__main__":
    main()
