"""Image-to-image translation: pix2pix edges -> Fashion-MNIST, CycleGAN MNIST-5k <-> Fashion-MNIST
and digits <-> MNIST-5k, trained by the one trainer under a wall-clock budget.

    python -m bench.translation [--parts pix2pix,cyclegan,cyclegan-digits] [--minutes 4]

pix2pix: 5,000 Fashion-MNIST training images, 256 for validation (the trainer keeps the weights
of the best held-out L1), 1,000 held-out test images; the held-out L1 (on a [0, 1] pixel scale)
is compared with two baselines: the mean training image, and the edge map itself.
Pictures: bench/pix2pix_fashion.png (input | output | truth per row) and bench/cyclegan.png /
bench/cyclegan_digits.png (row pairs: domain A then A -> B; domain B then B -> A).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from genlab.data import load_dataset
from genlab.data.domains import join_domains
from genlab.report.figures import image_grid
from genlab import make
from genlab.train import TrainConfig, Trainer

from .common import print_table, write_results

HERE = Path(__file__).parent


def save_grid(x: torch.Tensor, spec, ncol: int, path: Path, width: int = 560) -> None:
    from PIL import Image

    img = Image.fromarray(image_grid(x, spec, ncol=ncol))
    scale = max(1, width // img.width)
    img.resize((img.width * scale, img.height * scale), Image.NEAREST).save(path)
    print(f"wrote {path}")


def train(model, x, x_val, minutes: float, seed: int, batch: int, y=None) -> tuple[Trainer, float]:
    tc = TrainConfig(epochs=1000, batch_size=batch, seed=seed, progress=False, device="cpu", patience=None,
                     max_minutes=minutes)
    tr = Trainer(model, tc)
    t0 = time.perf_counter()
    tr.fit(x, y, x_val)
    return tr, time.perf_counter() - t0


def pix2pix(minutes: float, seed: int) -> dict:
    ds = load_dataset("fashion-mnist", n=6256)
    train_x, val_x, test_x = ds.x[:5000], ds.x[5000:5256], ds.x[5256:]
    model = make("pix2pix", ds.spec, seed=seed, pairing="edges", base=16)
    tr, seconds = train(model, train_x, val_x, minutes, seed, 32)
    l1 = model.l1(test_x)
    top = ds.spec.levels - 1
    mean_img = train_x.mean(0, keepdim=True).round()
    base_mean = ((mean_img - test_x).abs().flatten(1).mean(1) / top).mean()
    base_edges = ((model.inputs(test_x) - test_x).abs().flatten(1).mean(1) / top).mean()
    show = test_x[:10]
    trip = torch.stack([model.inputs(show), model.translate(model.inputs(show)), show], 1)
    save_grid(trip.reshape(-1, *ds.spec.event_shape), ds.spec, 3, HERE / "pix2pix_fashion.png", width=300)
    return {"part": "pix2pix edges->fashion-mnist", "steps": tr.step, "train_seconds": seconds,
            "test_l1": float(l1.mean()), "test_l1_se": float(l1.std() / len(l1) ** 0.5),
            "l1_mean_image": float(base_mean), "l1_edge_map": float(base_edges), "n_test": len(test_x)}


def cyclegan(a_name: str, b_name: str, minutes: float, seed: int, picture: str) -> dict:
    # unpaired domains (labels: 0 = A, 1 = B); the first 256 images of A are held out
    ds = join_domains([load_dataset(a_name, n=2256 if a_name != "digits" else None),
                       load_dataset(b_name, n=2000)], f"{a_name}+{b_name}")
    val_x = ds.x[:256]
    model = make("cyclegan", ds.spec, seed=seed, stored_images=2000, base=16)
    tr, seconds = train(model, ds.x[256:], val_x, minutes, seed, 32, y=ds.y[256:])
    b = model.domain_b_images[:8]
    with torch.no_grad():
        cyc_a = (model.translate(model.translate(val_x, "a2b"), "b2a") - val_x).abs().mean() / (ds.spec.levels - 1)
        bb = model.domain_b_images[-256:]
        cyc_b = (model.translate(model.translate(bb, "b2a"), "a2b") - bb).abs().mean() / (ds.spec.levels - 1)
    rows = torch.cat([val_x[:8], model.translate(val_x[:8], "a2b"), b, model.translate(b, "b2a")])
    save_grid(rows, ds.spec, 8, HERE / picture)
    return {"part": f"cyclegan {a_name}<->{b_name}", "steps": tr.step, "train_seconds": seconds,
            "cycle_l1_a": float(cyc_a), "cycle_l1_b": float(cyc_b)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="pix2pix,cyclegan,cyclegan-digits")
    p.add_argument("--minutes", type=float, default=4.0, help="training budget per model")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for part in args.parts.split(","):
        if part == "pix2pix":
            rows.append(pix2pix(args.minutes, args.seed))
        elif part == "cyclegan":
            rows.append(cyclegan("mnist5k", "fashion-mnist", args.minutes, args.seed, "cyclegan.png"))
        elif part == "cyclegan-digits":
            rows.append(cyclegan("digits", "mnist5k", args.minutes, args.seed, "cyclegan_digits.png"))
        else:
            raise ValueError(f"unknown part {part!r}")
        print(rows[-1], flush=True)
    print()
    print_table(rows, ["part", "steps", "train_seconds", "test_l1", "l1_mean_image", "l1_edge_map",
                       "cycle_l1_a", "cycle_l1_b"])
    command = "python -m bench.translation " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results("translation", rows, command, key=("part",))


if __name__ == "__main__":
    main()
