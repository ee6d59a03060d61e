"""Lossless compression of held-out data with genlab models, beside standard compressors.

    python -m bench.compress [--parts digits,mnist] [--minutes 2] [--mnist-minutes 5]

Digits: sklearn digits (8x8, 17 levels 0..16), split 80/10/10 (seed 0), the 180 test images
coded. Each pixel is stored as one byte (0..16) for the standard compressors (zlib level 9, bz2
level 9, lzma preset 9 | EXTREME, PNG of the images tiled into one 8-bit grey image, Pillow
``optimize=True``), so their bits/dim are 8 * bytes / (180 * 64). Models: gaussian and gmm (5
components; chain coding of their discretization, `genlab.tasks.compress`), a Chow-Liu
bayesnet, made and pixelcnn (chain coding) and a conv vae with a discretized logistic decoder (bits-back), each trained
with a wall-clock budget on the training split (early stopping on validation).

Binarized MNIST-5k (pixel >= 128 -> 1; as bench/binarized_vae.py, 4,000 / 500 / 500): the 500
test images. Standard compressors on two byte layouts: one byte per pixel (0/1) and packed bits
(8 pixels per byte, ``numpy.packbits``); the issue's bzip2 reference (0.259 bits/dim) is
compared with the better of the two. Model: the MLP vae of bench/binarized_vae.py (50 Gaussian
latents, Bernoulli decoder), bits-back coded.

Columns: ``file`` = the whole compressed file (header + words) in bits/dim; ``payload`` = the
coder's words only; ``nll`` = the model's own figure (-log2 p for exact models, as log_prob
reports it: the dequantized bound for gaussian/gmm; -ELBO for the vae, 16 posterior draws);
``ideal`` = sum of -log2 of the probabilities actually coded (for gaussian/gmm: the discretized
model Q). Round trips are checked bit-exact (decompress's checksum and an array comparison).
"""
from __future__ import annotations

import argparse
import bz2
import io
import lzma
import sys
import time
import zlib

import numpy as np
import torch

from genlab.data import load_dataset
from genlab.registry import get_family
from genlab import make
from genlab.tasks.compress import measure
from genlab.train import TrainConfig, Trainer

from .common import data_splits, print_table, write_results

DIGITS_MODELS = {
    "gaussian": {},
    "gmm": {"n_components": 5},
    "bayesnet": {"structure": "chow-liu"},
    "made": {"hidden": 512, "depth": 2, "n_orders": 1},
    "pixelcnn": {"channels": 32, "n_layers": 5},
    "vae": {"conditional": False},
}


def baselines(raw: np.ndarray, images: np.ndarray | None, dims: int) -> list[dict]:
    """bits/dim of the standard compressors on the bytes ``raw`` (and PNG of ``images``)."""
    rows = [("zlib (level 9)", zlib.compress(raw.tobytes(), 9)), ("bz2 (level 9)", bz2.compress(raw.tobytes(), 9)),
            ("lzma (preset 9 | EXTREME)", lzma.compress(raw.tobytes(), preset=9 | lzma.PRESET_EXTREME))]
    if images is not None:
        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(images).save(buf, format="PNG", optimize=True)
        rows.append(("png (tiled, optimize)", buf.getvalue()))
    return [{"method": name, "bytes": len(b), "file": 8 * len(b) / dims} for name, b in rows]


def train(family: str, splits, config: dict, minutes: float, seed: int = 0, **kw):
    model = make(family, splits.train.spec, seed=seed, **config)
    cfg = TrainConfig(seed=seed, device="cpu", progress=False,
                       **({"max_minutes": minutes, "epochs": 10_000} | kw)).for_family(get_family(family))
    t0 = time.perf_counter()
    Trainer(model, cfg).fit(splits.train.x, None, splits.val.x)  # labels are not coded
    return model, time.perf_counter() - t0


def model_row(name: str, model, x, train_s: float, nll_samples: int = 16) -> dict:
    r = measure(model, x, nll_samples=nll_samples)
    row = {"method": name, "bytes": r["bytes"], "file": r["bits_per_dim"], "payload": r["payload_bits_per_dim"],
           "ideal": r["ideal_bits_per_dim"], "nll": r["nll_bits_per_dim"],
           "payload_vs_nll_%": 100 * (r["payload_bits_per_dim"] / r["nll_bits_per_dim"] - 1),
           "coding": r["method"], "train_s": train_s, "compress_s": r["compress_seconds"],
           "decompress_s": r["decompress_seconds"]}
    print(f"  {name}: file {row['file']:.4f}, payload {row['payload']:.4f}, nll {row['nll']:.4f} bits/dim",
          flush=True)
    return row


def digits(minutes: float, families: list[str]) -> list[dict]:
    s = data_splits("digits")
    x = s.test.x
    n, dims = len(x), x[0].numel() * len(x)
    raw = x.reshape(n, -1).numpy().astype(np.uint8)
    tiled = raw.reshape(n * 8, 8)  # the test images stacked into one 8-bit grey image
    rows = baselines(raw, tiled, dims)
    full = load_dataset("digits").x.reshape(-1).numpy().astype(np.uint8)  # the lzma reference
    rows.append({"method": "lzma on all 1,797 digits (reference)", "bytes": "",
                 "file": 8 * len(lzma.compress(full.tobytes(), preset=9 | lzma.PRESET_EXTREME)) / len(full)})
    for fam in families:
        model, sec = train(fam, s, DIGITS_MODELS[fam], minutes)
        rows.append(model_row(fam, model, x, sec))
    return [{"data": "digits (180 test, 8x8, 17 levels)", **r} for r in rows]


def mnist(minutes: float) -> list[dict]:
    from genlab.data import split

    from .binarized_vae import CONFIG, binarized_mnist5k
    s = split(binarized_mnist5k(), seed=0)
    x = s.test.x
    n, dims = len(x), x[0].numel() * len(x)
    raw = x.reshape(n, -1).numpy().astype(np.uint8)
    tiled = (raw * 255).reshape(n * 28, 28)
    rows = [{**r, "method": r["method"] + ", byte/pixel"} for r in baselines(raw, tiled, dims)]
    rows += [{**r, "method": r["method"] + ", packed bits"} for r in baselines(np.packbits(raw, axis=1), None, dims)]
    model, sec = train("vae", s, CONFIG, minutes, batch_size=100, lr=1e-3, patience=30)
    rows.append(model_row("vae (bits-back)", model, x, sec))
    return [{"data": "binarized MNIST-5k (500 test, 28x28)", **r} for r in rows]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="digits,mnist")
    p.add_argument("--families", default=",".join(DIGITS_MODELS), help="digits models")
    p.add_argument("--minutes", type=float, default=2.0, help="training budget of each digits model")
    p.add_argument("--mnist-minutes", type=float, default=5.0, help="training budget of the MNIST vae")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    if "digits" in args.parts:
        rows += digits(args.minutes, args.families.split(","))
    if "mnist" in args.parts:
        rows += mnist(args.mnist_minutes)
    print_table(rows, ["data", "method", "bytes", "file", "payload", "ideal", "nll", "payload_vs_nll_%",
                       "train_s", "compress_s", "decompress_s"])
    write_results("compress", rows, "python -m bench.compress " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("data", "method"))


if __name__ == "__main__":
    main()
