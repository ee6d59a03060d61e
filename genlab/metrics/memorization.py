"""Memorization: do generated examples sit closer to the training set than fresh data do?

For each generated example its nearest training example (distance ``d_gen``), and the same for
held-out examples (``d_test``): a model that generalizes puts its samples as far from the
training set as new data are (ratio ~1, few near-copies); a model that replays its training set
puts them at distance ~0 (ratio ~0, most samples near-copies) and is flagged. This is the
nearest-neighbour test of the data-copying literature (Meehan et al. 2020 use the same
generated-vs-held-out distance comparison; here in its simplest, per-sample form).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .samples import InsufficientData, SampleEstimate, as_features, nearest


@dataclass
class Memorization:
    """The result of `memorization`.

    Attributes:
        distance_ratio: median d_gen / median d_test with a bootstrap standard error (1: as far
            as fresh data; near 0: copies; above 1: samples off the data, not memorization).
        near_copy_share: share of generated examples closer to the training set than the
            ``quantile`` of held-out distances (fresh data: about ``quantile``).
        exact_copy_share: share of generated examples equal to a training example.
        flagged: True when the near-copy share is clearly above what fresh data give.
        nearest_train: (m,) index of each generated example's nearest training example.
        gen_distances: (m,) d_gen.
        details: threshold, baseline and the rule used.
    """

    distance_ratio: SampleEstimate
    near_copy_share: SampleEstimate
    exact_copy_share: SampleEstimate
    flagged: bool
    nearest_train: Tensor
    gen_distances: Tensor
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"distance_ratio": self.distance_ratio.to_dict(), "near_copy_share": self.near_copy_share.to_dict(),
                "exact_copy_share": self.exact_copy_share.to_dict(), "flagged": self.flagged, **self.details}


def memorization(generated: Tensor, train: Tensor, test: Tensor, *, quantile: float = 0.01,
                 flag_factor: float = 3.0, n_boot: int = 200, seed: int = 0) -> Memorization:
    """Compare generated-to-train distances with held-out-test-to-train distances.

    Args:
        generated: (m, ...) generated examples; train: (n, ...) the training set; test: (t, ...)
            held-out examples from the same distribution (never trained on). Flattened; use data
            space (pixels) so that a copy is a copy.
        quantile: the near-copy threshold is this quantile of the held-out distances.
        flag_factor: flag when the near-copy share's lower 95% bound exceeds ``flag_factor *
            quantile`` and at least 5% of samples are near-copies (fresh data give ``quantile``).
        n_boot: bootstrap resamples for the distance ratio's standard error.
        seed: seeds the bootstrap.
    """
    if not 0 < quantile < 1:
        raise ValueError(f"memorization: quantile must lie in (0, 1), got {quantile}")
    g, tr, te = as_features(generated, "generated"), as_features(train, "train"), as_features(test, "test")
    if not g.shape[1] == tr.shape[1] == te.shape[1]:
        raise ValueError(f"memorization: generated, train and test have {g.shape[1]}, {tr.shape[1]} and "
                         f"{te.shape[1]} values per example; pass examples of one data set")
    if len(te) < 2:
        raise InsufficientData("memorization needs at least 2 held-out examples")
    d_gen, idx = nearest(g, tr)
    d_test, _ = nearest(te, tr)
    scale = float(d_test.median())
    if scale == 0:  # more than half the held-out examples are copies of training examples
        raise InsufficientData("memorization: every held-out example equals a training example; the split "
                         "leaks training data, so copies cannot be told apart")
    ratio = float(d_gen.median()) / scale
    gen = torch.Generator().manual_seed(seed)
    boots = torch.empty(n_boot, dtype=torch.float64)
    for b in range(n_boot):
        ig = torch.randint(len(d_gen), (len(d_gen),), generator=gen)
        it = torch.randint(len(d_test), (len(d_test),), generator=gen)
        boots[b] = d_gen[ig].median() / d_test[it].median().clamp_min(1e-300)
    tau = float(torch.quantile(d_test, quantile))
    tiny = 1e-9 * scale
    near = d_gen <= max(tau, tiny)
    exact = d_gen <= tiny
    p = float(near.double().mean())
    se = math.sqrt(p * (1 - p) / len(near))
    flagged = bool(p - 1.96 * se > flag_factor * quantile and p >= 0.05)
    m, n = len(g), len(tr)
    dist = SampleEstimate(ratio, float(boots.std()), m, n, {"n_test": len(te), "bootstrap": n_boot})
    near_e = SampleEstimate(p, se, m, n, {"threshold": tau, "quantile": quantile})
    pe = float(exact.double().mean())
    exact_e = SampleEstimate(pe, math.sqrt(pe * (1 - pe) / m), m, n)
    details = {"threshold": tau, "quantile": quantile, "baseline_near_copy_share": quantile,
               "rule": f"flagged if near_copy_share's lower 95% bound > {flag_factor:g} x {quantile:g} "
                       f"and near_copy_share >= 0.05", "n_test": len(te)}
    return Memorization(dist, near_e, exact_e, flagged, idx, d_gen, details)
