"""Figures written to files: a sample grid for images, a scatter plot for vectors, strips of
images side by side, loss curves, and the two pictures of a run directory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.spec import DataSpec
from .grid import image_grid
from .plots import loss_png


def _save_upscaled(arr: np.ndarray, path: Path, size: int) -> None:
    """Write a uint8 image, enlarged by an integer factor (nearest neighbour) to about ``size``
    pixels on its longer side, so that 8x8 digits stay readable."""
    from PIL import Image

    img = Image.fromarray(arr)
    scale = max(1, size // max(img.width, img.height))
    img.resize((img.width * scale, img.height * scale), Image.NEAREST).save(path)


def save_samples(x: torch.Tensor, spec: DataSpec, path: str | Path, title: str = "",
                 reference: torch.Tensor | None = None) -> Path:
    """Write samples as a picture: an image grid, or a scatter of the first two coordinates
    (beside ``reference`` data when given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.is_image:
        _save_upscaled(image_grid(x, spec), path, 640)
        return path
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    flat = x.detach().cpu().reshape(len(x), -1).numpy()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if reference is not None:
        ref = reference.detach().cpu().reshape(len(reference), -1).numpy()
        ax.scatter(ref[:, 0], ref[:, 1] if ref.shape[1] > 1 else np.zeros(len(ref)), s=2, alpha=0.3,
                   c="tab:gray", label="data")
    ax.scatter(flat[:, 0], flat[:, 1] if flat.shape[1] > 1 else np.zeros(len(flat)), s=2, alpha=0.5,
               c="tab:blue", label="samples")
    names = spec.feature_names or ("x0", "x1")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1] if len(names) > 1 else "")
    ax.set_title(title or "samples")
    if reference is not None:
        ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_strips(rows: torch.Tensor, spec: DataSpec, path: str | Path, size: int = 480) -> Path:
    """Write images as a PNG, one strip per row: interpolation paths, or input | output pairs.

    Args:
        rows: (n_rows, per_row, *event_shape) images in data space.
        spec: the data's spec (must describe images).
        path: the .png to write.
        size: about this many pixels on the longer side (integer upscaling).
    Raises:
        ValueError: the data are not images.
    """
    if not spec.is_image:
        raise ValueError("PNG strips need image data; write .npy instead")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_upscaled(image_grid(rows.reshape(-1, *spec.event_shape), spec, ncol=rows.shape[1]), path, size)
    return path


def loss_curves(metrics_path: str | Path, path: str | Path) -> Path | None:
    """Write the PNG of every ``loss/*`` series and the validation loss of a run's metrics.jsonl
    (`genlab.report.plots.loss_png`) to ``path``; None when the run logged no loss."""
    png = loss_png(metrics_path)
    if png is None:
        return None
    Path(path).write_bytes(png)
    return Path(path)


def save_run_figures(run_dir: str | Path, name: str, spec: DataSpec, samples: torch.Tensor | None,
                     reference: torch.Tensor | None = None, note: str = "") -> None:
    """The pictures of a run directory: ``samples.png`` and, when the run logged losses, ``loss.png``.

    Args:
        run_dir: the run directory (holds ``metrics.jsonl``).
        name: the family, for the title.
        spec: the data's spec.
        samples: (n, *event_shape) samples in data space (at most 64 images are drawn); None: the
            model gave none, and there is no ``samples.png``.
        reference: held-out examples drawn under a scatter of vectors (ignored for images).
        note: words added to a scatter's title (how the preview was sized, when it was cut).
    """
    run_dir = Path(run_dir)
    if samples is not None:
        shown = samples[:64] if spec.is_image else samples
        save_samples(shown, spec, run_dir / "samples.png", title=f"{name} samples" + (f"\n({note})" if note else ""),
                     reference=None if spec.is_image else reference)
    if (run_dir / "metrics.jsonl").exists():
        loss_curves(run_dir / "metrics.jsonl", run_dir / "loss.png")
