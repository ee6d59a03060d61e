"""Maximum mean discrepancy (Gretton et al. 2012) with the inverse multiquadratic kernel, as used
by WAE-MMD (Tolstikhin et al. 2018, Sec. 4).

``MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y)``; `mmd2_unbiased` is the U-statistic
(Gretton et al. 2012, Lemma 6), whose expectation is exactly 0 when P = Q.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

WAE_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # Tolstikhin et al.'s code: C = 2 d s sigma^2


def imq_kernel(a: Tensor, b: Tensor, scales: Sequence[float] = WAE_SCALES, sigma2: float = 1.0) -> Tensor:
    """Sum over scales of ``C / (C + ||a_i - b_j||^2)``, ``C = 2 * d * s * sigma2``.

    Args:
        a: (n, d); b: (m, d).
        scales: multipliers ``s`` of the base constant ``2 d sigma2`` (the prior's expected
            squared distance for ``N(0, sigma2 I)``).
    Returns:
        (n, m) kernel matrix.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"imq_kernel: expected (n, d) and (m, d), got {tuple(a.shape)} and {tuple(b.shape)}")
    d2 = torch.cdist(a, b).pow(2)
    base = 2.0 * a.shape[1] * sigma2
    return sum(base * s / (base * s + d2) for s in scales)


def mmd2_unbiased(x: Tensor, y: Tensor, kernel: Callable[[Tensor, Tensor], Tensor] = imq_kernel) -> Tensor:
    """Unbiased estimate of ``MMD^2`` between the samples ``x: (n, d)`` and ``y: (m, d)``, n, m >= 2.

    ``1/(n(n-1)) sum_{i!=j} k(x_i,x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i,y_j) - 2/(nm) sum_ij k(x_i,y_j)``.
    Can be negative; its mean over draws is ``MMD^2`` (0 for identical distributions).
    """
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"mmd2_unbiased needs at least 2 samples on each side, got {n} and {m}")
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    off = lambda k, s: (k.sum() - k.diagonal().sum()) / (s * (s - 1))  # noqa: E731
    return off(kxx, n) + off(kyy, m) - 2 * kxy.mean()
