"""Fréchet distance between feature distributions: classifier-FID.

``FD = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})`` (Fréchet 1957; Dowson & Landau 1982),
the 2-Wasserstein distance between Gaussians fitted to two feature sets (Heusel et al. 2017).
genlab computes it on features of a small classifier that it trains on the data set's own labels
(`genlab.metrics.classifier`), never on downloaded Inception weights, so the figure is called
*classifier-FID* everywhere and is comparable only between models of the same data set, with
the same classifier, and at the same numbers of examples (FID is biased upward at small n).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .samples import InsufficientData, SampleEstimate, as_features

MIN_EXAMPLES = 2000
WHY_MIN = ("the Fréchet distance of sample means and covariances is biased upward by about "
           "tr(S)/n at n examples, so with few examples it mostly measures n, not the model")


def _sqrtm_psd_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr((S1 S2)^{1/2}) for symmetric positive semi-definite S1, S2, via eigen-decompositions:
    (S1 S2)^{1/2} is similar to (A S2 A)^{1/2} with A = S1^{1/2}, which is symmetric PSD."""
    w, v = np.linalg.eigh(s1)
    a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = a @ s2 @ a
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(ev, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu1, cov1) and N(mu2, cov2).

    Args:
        mu1, mu2: (d,) means; cov1, cov2: (d, d) covariance matrices.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, float)), np.atleast_1d(np.asarray(mu2, float))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, float)), np.atleast_2d(np.asarray(cov2, float))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"frechet_distance: shapes differ: mu {mu1.shape} vs {mu2.shape}, "
                         f"cov {cov1.shape} vs {cov2.shape}")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * _sqrtm_psd_product(cov1, cov2)
    return float(max(value, 0.0))


def _stats(f: Tensor) -> tuple[np.ndarray, np.ndarray]:
    a = f.numpy()
    return a.mean(0), np.atleast_2d(np.cov(a, rowvar=False))


def fid(real: Tensor, fake: Tensor, *, min_examples: int = MIN_EXAMPLES, n_boot: int = 50,
        seed: int = 0) -> SampleEstimate:
    """Classifier-FID between two feature sets, with a bootstrap standard error.

    Args:
        real: (n, d) features of real examples; fake: (m, d) features of generated examples.
        min_examples: refuse (`InsufficientData`, a ValueError, saying why) when either set is
            smaller; lower it knowingly, and compare only figures computed at the same n.
        n_boot: bootstrap resamples (both sets resampled) for the standard error.
        seed: seeds the bootstrap.
    """
    real, fake = as_features(real, "real"), as_features(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"fid: feature sizes differ ({real.shape[1]} vs {fake.shape[1]})")
    small = min(len(real), len(fake))
    if small < min_examples:
        raise InsufficientData(f"classifier-FID refused: {len(real)} real and {len(fake)} generated examples, fewer "
                         f"than min_examples={min_examples}: {WHY_MIN}. Use more examples, or lower "
                         f"min_examples (CLI: --fid-min-examples) and compare only at equal n")
    if small < 2:
        raise InsufficientData("fid needs at least 2 examples in each set to estimate a covariance")
    value = frechet_distance(*_stats(real), *_stats(fake))
    g = torch.Generator().manual_seed(seed)
    boots = []
    for _ in range(n_boot):
        r = real[torch.randint(len(real), (len(real),), generator=g)]
        f = fake[torch.randint(len(fake), (len(fake),), generator=g)]
        boots.append(frechet_distance(*_stats(r), *_stats(f)))
    se = float(np.std(boots, ddof=1)) if n_boot > 1 else float("nan")
    return SampleEstimate(value, se, len(fake), len(real), {"bootstrap": n_boot, "min_examples": min_examples})
