"""Figures: a sample grid for images, a scatter plot for vectors, loss curves."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..data.spec import DataSpec


def image_grid(x: torch.Tensor, spec: DataSpec, ncol: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images ``x: (n, C, H, W)`` (data space) into one uint8 array (rows, cols[, 3])."""
    x = x.detach().cpu().float()
    n, c, h, w = x.shape
    top = (spec.levels - 1) if spec.levels else 1.0
    if spec.levels is None:  # continuous: stretch to the observed range
        lo, hi = float(x.min()), float(x.max())
        x, top = (x - lo) / max(hi - lo, 1e-12), 1.0
    x = (x / top).clamp(0, 1)
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    grid = torch.ones(c, nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = x[i]
    arr = (grid.numpy() * 255).round().astype(np.uint8)
    return arr[0] if c == 1 else arr[:3].transpose(1, 2, 0)


def save_samples(x: torch.Tensor, spec: DataSpec, path: str | Path, title: str = "",
                 reference: torch.Tensor | None = None) -> Path:
    """Write samples as a picture: an image grid, or a scatter of the first two coordinates
    (beside ``reference`` data when given)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.is_image:
        arr = image_grid(x, spec)
        img = Image.fromarray(arr)
        scale = max(1, 640 // max(img.width, img.height))
        img.resize((img.width * scale, img.height * scale), Image.NEAREST).save(path)
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


def loss_curves(metrics_path: str | Path, path: str | Path) -> Path | None:
    """Write the PNG of every ``loss/*`` series and the validation loss of a run's metrics.jsonl
    (`genlab.report.plots.loss_png`) to ``path``; None when the run logged no loss."""
    from .plots import loss_png  # plots builds on this module

    png = loss_png(metrics_path)
    if png is None:
        return None
    Path(path).write_bytes(png)
    return Path(path)
