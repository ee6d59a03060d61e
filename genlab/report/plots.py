"""Figures for the HTML report, returned as PNG bytes: samples, loss curves, interpolations.

Every plot has labelled axes with units; image grids are drawn on axes whose ticks count pixels.
"""
from __future__ import annotations

import io as _io
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data.spec import DataSpec
from ..protocol import GenerativeModel, Latent
from .grid import image_grid


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> bytes:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    return buf.getvalue()


def _names(spec: DataSpec) -> tuple[str, str]:
    names = spec.feature_names or ("x0", "x1")
    return names[0], names[1] if len(names) > 1 else "x1"


def samples_png(x: Tensor, spec: DataSpec, title: str, reference: Tensor | None = None) -> bytes:
    """A grid of image samples, or a scatter of the first two coordinates over the data.

    Args:
        x: (n, *event_shape) data-space samples; reference: (m, *event_shape) real examples.
    """
    plt = _plt()
    if spec.is_image:
        grid = image_grid(x[:64], spec)
        fig, ax = plt.subplots(figsize=(3.6, 3.8))
        ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xlabel("pixels")
        ax.set_ylabel("pixels")
    else:
        fig, ax = plt.subplots(figsize=(3.8, 3.6))
        flat = x.detach().cpu().reshape(len(x), -1).numpy()
        if reference is not None:
            ref = reference.detach().cpu().reshape(len(reference), -1).numpy()
            ax.scatter(ref[:, 0], ref[:, 1] if ref.shape[1] > 1 else 0 * ref[:, 0], s=2, c="tab:gray",
                       alpha=0.3, label="held-out data")
        ax.scatter(flat[:, 0], flat[:, 1] if flat.shape[1] > 1 else 0 * flat[:, 0], s=2, c="tab:blue",
                   alpha=0.5, label="samples")
        xn, yn = _names(spec)
        ax.set_xlabel(f"{xn} (data units)")
        ax.set_ylabel(f"{yn} (data units)")
        ax.legend(loc="upper right", markerscale=4, fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _png(fig)


def loss_png(metrics_path: str | Path, title: str = "training") -> bytes | None:
    """Training losses (every ``loss/*`` series) and the validation loss against the step, or
    None when the run logged none. Losses are per example, in nats."""
    path = Path(metrics_path)
    if not path.is_file():
        return None
    series: dict[str, tuple[list[int], list[float]]] = {}
    for ln in path.read_text().splitlines():
        if not ln.strip():
            continue
        r = json.loads(ln)
        for k, v in r.items():
            if (k.startswith("loss/") or k == "val_loss") and v is not None:
                s = series.setdefault(k, ([], []))
                s[0].append(r["step"])
                s[1].append(v)
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    for k, (steps, vals) in series.items():
        ax.plot(steps, vals, label=k, marker="o" if k == "val_loss" or len(vals) < 3 else None, ms=3)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats per example)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


@torch.no_grad()
def interpolation_png(model: GenerativeModel, x: Tensor, pairs: int = 4, steps: int = 8) -> bytes:
    """Decode straight lines between the codes of pairs of examples (a `Latent` model).

    Args:
        x: (>= 2 * pairs, *event_shape) data-space examples whose codes are interpolated.
    Raises:
        NotSupported: the model has no latent space or no encoder.
    """
    from ..protocol import NotSupported

    if not isinstance(model, Latent):
        raise NotSupported(f"{model.name} has no latent space")
    pairs = max(1, min(pairs, len(x) // 2))
    a, b = model.encode(x[:pairs]), model.encode(x[pairs:2 * pairs])
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device)
    codes = (a[:, None] * (1 - t[None, :, None]) + b[:, None] * t[None, :, None]).reshape(pairs * steps, -1)
    out = model.decode(codes).cpu()
    spec, plt = model.spec, _plt()
    if spec.is_image:
        grid = image_grid(out, spec, ncol=steps)
        fig, ax = plt.subplots(figsize=(0.55 * steps + 1.2, 0.55 * pairs + 1.0))
        ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest", aspect="auto",
                  extent=(-0.5 / (steps - 1), 1 + 0.5 / (steps - 1), pairs, 0))
        ax.set_xlabel("interpolation weight t (code = (1-t) z_a + t z_b)")
        ax.set_ylabel("pair")
        ax.set_yticks(np.arange(pairs) + 0.5, [str(i + 1) for i in range(pairs)])
    else:
        flat = out.reshape(pairs, steps, -1).numpy()
        fig, ax = plt.subplots(figsize=(4.2, 3.4))
        ref = x.detach().cpu().reshape(len(x), -1).numpy()
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="tab:gray", alpha=0.3, label="data")
        for i in range(pairs):
            sc = ax.scatter(flat[i, :, 0], flat[i, :, 1], c=t.cpu().numpy(), cmap="viridis", s=14)
            ax.plot(flat[i, :, 0], flat[i, :, 1], lw=0.6, c="k", alpha=0.5)
        fig.colorbar(sc, ax=ax, label="interpolation weight t")
        xn, yn = _names(spec)
        ax.set_xlabel(f"{xn} (data units)")
        ax.set_ylabel(f"{yn} (data units)")
    ax.set_title(f"{model.name}: decoded straight lines in the latent space", fontsize=9)
    fig.tight_layout()
    return _png(fig)
