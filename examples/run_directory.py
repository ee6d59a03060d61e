"""A run directory: train under a time budget, resume, load, sample, compress losslessly.

    python examples/run_directory.py                  # writes examples-out/run_directory/
    python examples/run_directory.py --seconds 30 --epochs 100

A `made` (an autoregressive network: an exact likelihood over the 17 grey levels of each pixel)
is trained on the 8x8 digits into a run directory, in two sessions of ``--seconds`` each, as a
job on a shared machine would be: the first stops on its time budget with a checkpoint, the
second resumes it (same data order, same random state: it ends where one long session would).
Then the run is loaded as any user of it would (`genlab.load`), scored on the held-out digits,
sampled, and used as a lossless compressor of test digits (`genlab.tasks.compress`: arithmetic
(ANS) coding with the model's probabilities, bit-exact on the way back).

The same run directory works with the command line: ``genlab sample OUT/made-digits -n 64
--out more.png``, ``genlab eval OUT/made-digits --data digits``, ``genlab report OUT/made-digits``.
"""
from __future__ import annotations

import argparse
import json
import lzma
import shutil
import sys
from pathlib import Path

import torch

import genlab
from genlab.data import split
from genlab.metrics import bits_per_dim, nll
from genlab.tasks.compress import compress, decompress
from genlab.train import TrainConfig

SETTINGS = {"hidden": 128}  # the family's default is 512: slower steps, better bits/dim
TAG = {"example": "examples/run_directory.py"}  # kept in config.json: marks runs this script may replace


def fresh_run_dir(run: Path) -> None:
    """Make way for a new run: genlab refuses to train over an existing run (resume it or choose
    another directory), so a run this script wrote before is removed, and anything else is kept."""
    if not run.exists():
        return
    config = run / "config.json"
    written_here = config.exists() and json.loads(config.read_text()).get("example") == TAG["example"]
    if not written_here:
        sys.exit(f"{run} exists and was not written by this example; choose another --out")
    shutil.rmtree(run)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("examples-out/run_directory"), help="output folder")
    p.add_argument("--seconds", type=float, default=4.0, help="time budget of each training session")
    p.add_argument("--epochs", type=int, default=40, help="epochs of the whole run (both sessions)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    run = args.out / "made-digits"
    args.out.mkdir(parents=True, exist_ok=True)
    fresh_run_dir(run)

    s = split(genlab.load_dataset("digits"), seed=args.seed)  # (n, 1, 8, 8) grey levels 0..16
    config = TrainConfig(epochs=args.epochs, batch_size=64, max_minutes=args.seconds / 60, seed=args.seed,
                         progress=False)

    print(f"{'session':<10}{'stopped because':<26}{'steps so far':>13}{'epoch':>7}{'best val NLL, nats':>20}")
    for session, resume in (("first", False), ("resumed", True)):
        # a resume rebuilds the same architecture; the weights, optimizer state, data position
        # and random state come from the run's last checkpoint
        model = genlab.make("made", s.train.spec, seed=args.seed, **SETTINGS)
        trainer = genlab.Trainer(model, config, out=run, run_info=TAG)
        trainer.fit(s.train.x, None, s.val.x, resume=resume)
        print(f"{session:<10}{trainer.stop_reason:<26}{trainer.step:>13}{trainer.epoch:>7}{trainer.best_val:>20.2f}")

    # what another process (or another person) does with the run: load it, verified file by file
    model = genlab.load(run)
    test = s.test.x
    est = bits_per_dim(nll(model, test), s.train.spec.dim)
    print(f"\nheld-out NLL: {est.value:.3f} ± {est.stderr:.3f} bits per pixel "
          f"(a pixel of 17 levels stored naively takes log2(17) = 4.09 bits)")

    # samples: a seeded generator makes them repeatable
    samples = model.sample(32, generator=torch.Generator().manual_seed(args.seed))
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 8, figsize=(8, 4))
    for ax, image in zip(axes.flat, samples):
        ax.imshow(image[0].cpu(), cmap="gray_r", vmin=0, vmax=16)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out / "samples.png", dpi=80)
    print(f"samples: {args.out / 'samples.png'}")

    # lossless compression of the test digits with the model, and back
    data = compress(model, test, seed=args.seed)
    (args.out / "test-digits.glz").write_bytes(data)
    back = decompress(model, data)
    assert torch.equal(back, test), "the round trip is exact"
    raw = test.to(torch.uint8).numpy().tobytes()  # one byte per pixel
    print(f"\n{len(test)} test digits ({len(raw):,} pixels), compressed losslessly:")
    print(f"  {'one byte per pixel':<22}{len(raw):>8,} bytes")
    print(f"  {'lzma':<22}{len(lzma.compress(raw, preset=9)):>8,} bytes")
    print(f"  {'genlab made':<22}{len(data):>8,} bytes ({8 * len(data) / len(raw):.2f} bits per pixel, "
          f"header included)")
    print(f"decompressed: identical to the original ({args.out / 'test-digits.glz'})")


if __name__ == "__main__":
    main()
