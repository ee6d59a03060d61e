"""Outlier (out-of-distribution) detection from a generative model's likelihood.

Every score is "higher = more anomalous", per example, shape (n,):

* `nll_scores`: ``-log p(x)`` (or ``-`` its bound, or the energy ``E(x)`` for `Energy` models).
  Known failure: a model of Fashion-MNIST gives MNIST *higher* likelihood (Nalisnick et al. 2019,
  "Do deep generative models know what they don't know?").
* `typicality_scores`: ``|-log p(x) - H|`` with ``H`` the mean NLL of held-out in-distribution
  data: the typicality test of Nalisnick et al. (2019, "Detecting out-of-distribution inputs to
  deep generative models using typicality"), one example per test (M = 1);
  `typicality_batch_scores` tests batches of M examples together (their eq. 4, M >= 2).
* `likelihood_ratio_scores`: ``-(log p(x) - log p_bg(x))`` against a background model that
  captures population-level statistics (Ren et al. 2019, "Likelihood ratios for OOD detection").
* `complexity_scores`: ``-log2 p(x) / D - L(x) / D`` with ``L(x)`` the length in bits of ``x``
  compressed by a standard lossless compressor (Serra et al. 2020, "Input complexity and
  out-of-distribution detection with likelihood-based generative models", eq. 2); both terms
  count bits of the same 8-bit example (`ByteQuantizer`).
"""
from __future__ import annotations

import io
import lzma
import math
import zlib

import numpy as np
import torch
from torch import Tensor

from ..metrics import log_likelihoods
from ..protocol import Density, Energy, GenerativeModel, NotSupported

COMPRESSORS = ("png", "webp", "zlib", "lzma")


def check_scorable(model: GenerativeModel) -> None:
    """Raise `NotSupported` unless ``model`` has a likelihood, a bound or an energy."""
    if model.density not in (Density.EXACT, Density.BOUND) and not isinstance(model, Energy):
        raise NotSupported(f"{model.name}: density is '{model.density.value}' and it has no energy, so it "
                           "cannot score outliers; use a family with a likelihood, a bound or an energy")


def nll_scores(model: GenerativeModel, x: Tensor, batch_size: int = 512) -> Tensor:
    """``-log p(x)`` in nats (EXACT / BOUND families) or ``E(x)`` (`Energy` families): (n,)."""
    check_scorable(model)
    if model.density in (Density.EXACT, Density.BOUND):
        return -log_likelihoods(model, model.check_input(x), batch_size=batch_size).double()
    if isinstance(model, Energy):
        x = model.check_input(x)
        with torch.no_grad():
            return torch.cat([model.energy(x[i:i + batch_size]).detach().cpu()
                              for i in range(0, len(x), batch_size)]).double()


def typicality_scores(nll: Tensor, nll_heldout: Tensor) -> Tensor:
    """Distance of each NLL from the typical set's entropy estimate ``H = mean(nll_heldout)``.

    Args:
        nll: (n,) test NLLs; nll_heldout: (m,) NLLs of held-out in-distribution examples.
    """
    return (nll - nll_heldout.double().mean()).abs()


def likelihood_ratio_scores(nll: Tensor, nll_background: Tensor) -> Tensor:
    """``-log p(x) + log p_bg(x)``: (n,) from the NLLs of the model and of the background model."""
    if nll.shape != nll_background.shape:
        raise ValueError(f"model and background scores differ in shape: {tuple(nll.shape)} vs "
                         f"{tuple(nll_background.shape)}")
    return nll - nll_background


def perturb(x: Tensor, rate: float, levels: int, generator: torch.Generator | None = None) -> Tensor:
    """Ren et al. (2019) background training data: each value of ``x`` (n, ...) on ``levels``
    discrete levels is replaced, with probability ``rate``, by a uniform random level."""
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    flip = torch.rand(x.shape, generator=generator) < rate
    noise = torch.randint(0, levels, x.shape, generator=generator).to(x.dtype)
    return torch.where(flip, noise, x)


def perturb_like(x: Tensor, rate: float, spec, generator: torch.Generator | None = None) -> Tensor:
    """`perturb` for any data: discrete values get a uniform random level, continuous ones a
    uniform value within the range of their feature in ``x`` (n, ...)."""
    if spec.is_discrete:
        return perturb(x, rate, spec.levels, generator)
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    lo, hi = x.amin(0), x.amax(0)
    flip = torch.rand(x.shape, generator=generator) < rate
    noise = lo + (hi - lo) * torch.rand(x.shape, generator=generator, dtype=x.dtype)
    return torch.where(flip, noise, x)


class ByteQuantizer:
    """How a compressor sees an example: 8-bit values, one byte per entry.

    Discrete data with at most 256 levels are their own bytes (``log_bin_volume = 0``: the
    model's discrete NLL is already the cost of those bytes). Otherwise each entry is mapped
    linearly from ``[lo, hi]`` (training range; per feature for vectors, one range for images)
    to 0..255, and ``log_bin_volume = sum_d log((hi_d - lo_d) / 255)`` (nats) converts a density
    into the probability of the 8-bit bin: ``-log P(bin) ~= -log p(x) - log_bin_volume``.
    """

    def __init__(self, lo: Tensor | None, hi: Tensor | None, dim: int):
        self.lo, self.hi = lo, hi
        if lo is None:
            self.log_bin_volume = 0.0
        else:
            width = torch.broadcast_to((hi - lo).clamp_min(1e-12), (dim,) if lo.ndim <= 1 else lo.shape)
            self.log_bin_volume = float(torch.log(width / 255).sum())

    @classmethod
    def fit(cls, x: Tensor, levels: int | None) -> "ByteQuantizer":
        """From training data ``x: (n, *event_shape)`` with ``levels`` (None: continuous)."""
        dim = int(x[0].numel())
        if levels is not None and levels <= 256:
            return cls(None, None, dim)
        if levels is not None:
            return cls(torch.zeros(()), torch.tensor(float(levels - 1)), dim)
        x = x.double()
        if x.ndim == 2:
            return cls(x.amin(0), x.amax(0), dim)
        return cls(x.amin(), x.amax(), dim)

    def __call__(self, x: Tensor) -> np.ndarray:
        """uint8 array shaped like ``x``."""
        a = x.detach().cpu().double()
        if self.lo is None:
            return a.round().clamp(0, 255).numpy().astype(np.uint8)
        b = ((a - self.lo) / (self.hi - self.lo).clamp_min(1e-12) * 255).round().clamp(0, 255)
        return b.numpy().astype(np.uint8)


def compressed_bits(x: Tensor | np.ndarray, levels: int | None = None, compressor: str = "png",
                    quantizer: ByteQuantizer | None = None) -> Tensor:
    """Length in bits of each example compressed losslessly: (n,).

    Examples are quantized to bytes first by ``quantizer``; without one, by a `ByteQuantizer`
    fitted on ``x`` itself (continuous data then scale over the batch's range, so pass one
    fitted on training data to make one example's score independent of the others). ``png`` and ``webp`` (lossless, method 4) need images (n, C, H, W) with C in
    {1, 3}; ``zlib`` / ``lzma`` take any shape (raw bytes, level 9).
    """
    if compressor not in COMPRESSORS:
        raise ValueError(f"compressor must be one of {COMPRESSORS}, got {compressor!r}")
    x = torch.as_tensor(x)
    b = (quantizer or ByteQuantizer.fit(x, levels))(x)
    out = []
    for e in b:
        if compressor in ("png", "webp"):
            if e.ndim != 3 or e.shape[0] not in (1, 3):
                raise ValueError(f"{compressor} compresses images (C, H, W) with C = 1 or 3, got {e.shape}; "
                                 "use compressor='zlib' for other data")
            from PIL import Image
            buf = io.BytesIO()
            img = Image.fromarray(e[0] if e.shape[0] == 1 else e.transpose(1, 2, 0))
            if compressor == "png":
                img.save(buf, "PNG", optimize=True)
            else:
                img.save(buf, "WEBP", lossless=True, quality=100, method=4)
            n = buf.tell()
        elif compressor == "zlib":
            n = len(zlib.compress(e.tobytes(), 9))
        else:
            n = len(lzma.compress(e.tobytes(), preset=9))
        out.append(8 * n)
    return torch.tensor(out, dtype=torch.float64)


def complexity_scores(nll: Tensor, x: Tensor, dim: int, levels: int | None = None,
                      compressor: str = "png", quantizer: ByteQuantizer | None = None) -> Tensor:
    """Serra et al. (2020), eq. 2: ``S(x) = -log2 P(x) / D - L(x) / D`` in bits per dimension: (n,).

    Both terms are costs of the same 8-bit example: ``L(x)`` compresses the bytes of
    ``quantizer`` (see `compressed_bits`), and ``-log2 P(x)`` is the model's NLL (nats) turned
    into bits of those bytes (``- quantizer.log_bin_volume`` for continuous data; nothing for
    discrete data with up to 256 levels, whose NLL is already a discrete cost).
    """
    shift = quantizer.log_bin_volume if quantizer is not None else 0.0
    return (nll - shift) / (dim * math.log(2)) - compressed_bits(x, levels, compressor, quantizer) / dim


def typicality_batch_scores(nll: Tensor, nll_heldout: Tensor, m: int) -> Tensor:
    """The typicality test on batches of ``m`` examples (Nalisnick et al. 2019, eq. 4):
    ``|mean of the batch's NLLs - H|`` for consecutive batches of ``nll`` (n,): (n // m,).

    A batch test: it says whether ``m`` examples *together* come from the training
    distribution (shuffle ``nll`` first; a remainder of ``n mod m`` examples is dropped).
    ``m = 1`` is `typicality_scores`.
    """
    if m < 1 or m > len(nll):
        raise ValueError(f"batch size m must lie in [1, {len(nll)}], got {m}")
    k = len(nll) // m
    return typicality_scores(nll[:k * m].double().reshape(k, m).mean(1), nll_heldout)


def threshold_at_fpr(heldout_scores: Tensor, fpr: float = 0.05) -> float:
    """The score above which at most ``fpr`` of held-out in-distribution examples fall."""
    if not 0 < fpr < 1:
        raise ValueError(f"fpr must lie in (0, 1), got {fpr}")
    return float(torch.quantile(heldout_scores.double(), 1 - fpr))


def detection_metrics(scores_in: Tensor, scores_out: Tensor) -> dict[str, float]:
    """AUROC and AUPR (outliers are the positive class) of scores on inliers and outliers."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    s = torch.cat([scores_in, scores_out]).double().numpy()
    y = np.r_[np.zeros(len(scores_in)), np.ones(len(scores_out))]
    return {"auroc": float(roc_auc_score(y, s)), "aupr": float(average_precision_score(y, s))}


def outlier_scores(model: GenerativeModel, x: Tensor, x_heldout: Tensor, *,
                   background: GenerativeModel | None = None, compressor: str = "png") -> dict[str, Tensor]:
    """Every score this model supports for ``x`` (n,) and for ``x_heldout`` (m,).

    Returns ``{method: (scores_x, scores_heldout)}`` for ``nll``, ``typicality``,
    ``complexity`` and, when ``background`` is given, ``ratio``.
    """
    x, x_heldout = model.check_input(x), model.check_input(x_heldout)
    nll, nll_h = nll_scores(model, x), nll_scores(model, x_heldout)
    out = {"nll": (nll, nll_h), "typicality": (typicality_scores(nll, nll_h), typicality_scores(nll_h, nll_h))}
    if background is not None:
        out["ratio"] = (likelihood_ratio_scores(nll, nll_scores(background, x)),
                        likelihood_ratio_scores(nll_h, nll_scores(background, x_heldout)))
    if compressor in ("png", "webp") and (len(model.spec.event_shape) != 3 or model.spec.event_shape[0] not in (1, 3)):
        compressor = "zlib"
    q = ByteQuantizer.fit(x_heldout, model.spec.levels)  # one byte map for both sets (continuous data)
    out["complexity"] = tuple(complexity_scores(n, v, model.spec.dim, compressor=compressor, quantizer=q)
                              for n, v in ((nll, x), (nll_h, x_heldout)))
    return out


def detect_outliers(run_dir: str, data: str, *, fpr: float = 0.05, background: str | None = "gaussian",
                    compressor: str = "png", n: int | None = None) -> dict:
    """Score ``data`` with the model of ``run_dir``: thresholds at ``fpr`` on the run's validation
    split; AUROC / AUPR against the run's test split as inliers.

    Returns ``{"methods": {method: {threshold, flagged, auroc, aupr}}, "scores": {method: (n,)}}``.
    """
    from ..registry import make
    from ..train import TrainConfig, Trainer
    from .runs import load_like, run_model_and_splits

    model, splits = run_model_and_splits(run_dir)
    check_scorable(model)
    if splits is None:
        raise ValueError(f"{run_dir} does not record its training data; outliers needs the run's "
                         "validation split to set thresholds (train it with `genlab train`)")
    x, _ = load_like(model, data, n)
    bg = None
    if background:
        bg = make(background, splits.train.spec, seed=0)
        Trainer(bg, TrainConfig(device="cpu", progress=False)).fit(
            splits.train.x, None, splits.val.x, None)
    test = outlier_scores(model, splits.test.x, splits.val.x, background=bg, compressor=compressor)
    new = outlier_scores(model, x, splits.val.x, background=bg, compressor=compressor)
    methods = {}
    for k, (s, s_val) in new.items():
        t = threshold_at_fpr(s_val, fpr)
        methods[k] = {"threshold": t, "flagged": float((s > t).double().mean()),
                      **detection_metrics(test[k][0], s)}
    return {"methods": methods, "scores": {k: v[0] for k, v in new.items()}}
