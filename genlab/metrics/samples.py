"""Sample-based metrics: generated examples against real ones (pure functions of tensors).

Inputs are feature vectors ``x: (n, d)`` (flattened examples or classifier features); every
result is a `SampleEstimate`: the figure, its standard error and the numbers of examples used.

* `mmd`: unbiased MMD^2 with a sum of Gaussian kernels of several bandwidths (Gretton et al.
  2012, eq. 3; kernel sum as in Li et al. 2015), standard error from Hoeffding's variance of a
  U-statistic of degree 2.
* `precision_recall`: k-NN manifolds (Kynkäänniemi et al. 2019, eqs. 1-3).
* `density_coverage`: Naeem et al. 2020, eqs. 3-4.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from ..protocol import Estimate, NotSupported

CHUNK = 2048  # rows of a distance matrix computed at once (bounds memory for large n)


class InsufficientData(NotSupported, ValueError):
    """A figure refused because the examples given are too few (or too degenerate) for it.

    A `NotSupported`, so that `genlab.evaluate` lists the figure as not computed with this
    message, and a ``ValueError``, what a direct caller passing too little data expects.
    """


@dataclass
class SampleEstimate(Estimate):
    """An `Estimate` of a two-sample figure: ``n`` generated (or compared) examples against
    ``n_ref`` reference examples; ``extra`` holds settings and secondary figures."""

    n_ref: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "n_ref": self.n_ref, **({"extra": self.extra} if self.extra else {})}

    def __str__(self) -> str:
        return f"{self.value:.4f} ± {self.stderr:.4f} (n={self.n}, n_ref={self.n_ref})"


def as_features(x: Tensor, name: str = "x") -> Tensor:
    """Flatten ``x: (n, ...)`` to float64 ``(n, d)``; reject empty or non-finite input."""
    x = torch.as_tensor(x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{name}: expected a batch of shape (n, ...) with n >= 1, got {tuple(x.shape)}")
    x = x.detach().reshape(len(x), -1).double().cpu()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: holds NaN or Inf; the model produced invalid samples")
    return x


def _same_dim(x: Tensor, y: Tensor) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real and generated features differ in size ({x.shape[1]} vs {y.shape[1]}); "
                         "pass examples of the same data set / feature extractor")


def pairwise_distances(x: Tensor, y: Tensor) -> Tensor:
    """Euclidean distances ``(n, m)`` between rows of ``x: (n, d)`` and ``y: (m, d)``."""
    return torch.cat([torch.cdist(x[i:i + CHUNK], y) for i in range(0, len(x), CHUNK)])


def nearest(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """For each row of ``x`` the distance to, and index of, its nearest row of ``y``: (n,), (n,).
    Computed without the matrix-product shortcut, so that a copy is at distance exactly 0."""
    d, i = [], []
    for s in range(0, len(x), CHUNK):
        m = torch.cdist(x[s:s + CHUNK], y, compute_mode="donot_use_mm_for_euclid_dist").min(1)
        d.append(m.values)
        i.append(m.indices)
    return torch.cat(d), torch.cat(i)


def knn_radii(x: Tensor, k: int) -> Tensor:
    """Distance from each row of ``x: (n, d)`` to its k-th nearest *other* row: (n,)."""
    if not 1 <= k < len(x):
        raise InsufficientData(f"k={k} needs at least k+1 = {k + 1} reference examples, got {len(x)}")
    out = []
    for s in range(0, len(x), CHUNK):
        d = torch.cdist(x[s:s + CHUNK], x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # the 1st is the point itself (distance 0)
    return torch.cat(out)


def _binomial(hits: Tensor, n_ref: int, **extra: Any) -> SampleEstimate:
    """Share of true entries with its binomial standard error sqrt(p(1-p)/n)."""
    p = float(hits.double().mean())
    return SampleEstimate(p, math.sqrt(max(p * (1 - p), 0.0) / len(hits)), len(hits), n_ref, extra)


def _in_any_ball(points: Tensor, centers: Tensor, radii: Tensor) -> Tensor:
    """(n,) counts: for each of ``points`` the number of balls ``B(centers_i, radii_i)`` holding it."""
    out = []
    for s in range(0, len(points), CHUNK):
        out.append((torch.cdist(points[s:s + CHUNK], centers) <= radii[None]).sum(1))
    return torch.cat(out)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[SampleEstimate, SampleEstimate]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    The real manifold is the union of balls around each real example with radius the distance to
    its k-th nearest real neighbour; precision is the share of generated examples inside it,
    recall the share of real examples inside the generated manifold (built the same way).

    Args:
        real: (n, d) reference features; fake: (m, d) generated features.
        k: neighbour rank of the radii (the paper uses 3).
    Returns:
        (precision, recall), each in [0, 1] with a binomial standard error given the manifolds.
    """
    real, fake = as_features(real, "real"), as_features(fake, "fake")
    _same_dim(real, fake)
    precision = _binomial(_in_any_ball(fake, real, knn_radii(real, k)) > 0, len(real), k=k)
    recall = _binomial(_in_any_ball(real, fake, knn_radii(fake, k)) > 0, len(fake), k=k)
    recall.n, recall.n_ref = precision.n, precision.n_ref  # n: generated, n_ref: real, for both
    return precision, recall


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[SampleEstimate, SampleEstimate]:
    """Density and coverage (Naeem et al. 2020, eqs. 3-4), k-NN balls around real examples only.

    density = (1 / kM) sum_j #{i: Y_j in B(X_i, NND_k(X_i))}  (about 1 when fake ~ real);
    coverage = (1 / N) sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))].

    Args:
        real: (N, d) features; fake: (M, d) features; k: neighbour rank (the paper uses 5).
    Returns:
        (density, coverage); density's standard error is over generated examples, coverage's is
        binomial over real examples.
    """
    real, fake = as_features(real, "real"), as_features(fake, "fake")
    _same_dim(real, fake)
    radii = knn_radii(real, k)
    counts = _in_any_ball(fake, real, radii).double() / k
    dens = SampleEstimate(float(counts.mean()), float(counts.std() / math.sqrt(len(counts))) if len(counts) > 1
                          else float("nan"), len(fake), len(real), {"k": k})
    covered = torch.zeros(len(real), dtype=torch.bool)
    for s in range(0, len(fake), CHUNK):
        covered |= (torch.cdist(fake[s:s + CHUNK], real) <= radii[None]).any(0)
    cov = _binomial(covered, len(real), k=k)
    cov.n, cov.n_ref = len(fake), len(real)
    return dens, cov


def median_bandwidth(x: Tensor, y: Tensor, max_points: int = 1000) -> float:
    """The median heuristic: median distance between pooled examples (first ``max_points`` of each)."""
    z = torch.cat([x[:max_points], y[:max_points]])
    d = torch.pdist(z)
    med = float(d.median()) if len(d) else 1.0
    return med if med > 0 else 1.0


def mmd(x: Tensor, y: Tensor, bandwidths: Sequence[float] | None = None,
        scales: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0)) -> SampleEstimate:
    """Unbiased squared maximum mean discrepancy with a sum of Gaussian kernels.

    ``MMD^2_u = 1/(n(n-1)) sum_{i != j} h(i, j)``, ``h(i,j) = k(x_i,x_j) + k(y_i,y_j) - k(x_i,y_j)
    - k(x_j,y_i)`` (Gretton et al. 2012, Lemma 6), ``k = sum_s exp(-|a-b|^2 / (2 s^2))``. Zero in
    expectation iff the distributions agree (can be slightly negative); the standard error uses
    Hoeffding's variance ``(4(n-2) zeta_1 + 2 zeta_2) / (n(n-1))``, valid under the null too.

    Args:
        x: (n, d) examples; y: (m, d) examples; the first ``min(n, m)`` of each are used.
        bandwidths: kernel widths; default ``scales`` times the median pooled distance.
    Returns:
        MMD^2 with its standard error; ``extra`` has the bandwidths and MMD^2 per bandwidth.
    """
    x, y = as_features(x, "x"), as_features(y, "y")
    _same_dim(x, y)
    n = min(len(x), len(y))
    if n < 4:
        raise InsufficientData(f"mmd needs at least 4 examples in each set, got {len(x)} and {len(y)}")
    x, y = x[:n], y[:n]
    if bandwidths is None:
        med = median_bandwidth(x, y)
        bandwidths = [s * med for s in scales]
    if not bandwidths or any(b <= 0 for b in bandwidths):
        raise ValueError(f"mmd: bandwidths must be positive, got {list(bandwidths)}")
    dxx, dyy, dxy = (pairwise_distances(a, b).square() for a, b in ((x, x), (y, y), (x, y)))
    h = torch.zeros(n, n, dtype=torch.float64)
    per = {}
    off = ~torch.eye(n, dtype=torch.bool)
    for b in bandwidths:
        hb = (-dxx / (2 * b * b)).exp() + (-dyy / (2 * b * b)).exp()
        kxy = (-dxy / (2 * b * b)).exp()
        hb = hb - kxy - kxy.T
        per[f"{b:.4g}"] = float(hb[off].mean())
        h += hb
    h_off = h.masked_fill(~off, 0.0)
    value = float(h_off.sum() / (n * (n - 1)))
    row = h_off.sum(1) / (n - 1)  # h~_i, whose variance estimates zeta_1
    zeta1 = float(row.var())
    zeta2 = float(h[off].var())
    var = max((4 * (n - 2) * zeta1 + 2 * zeta2) / (n * (n - 1)), 0.0)
    return SampleEstimate(value, math.sqrt(var), n, n, {"bandwidths": [float(b) for b in bandwidths],
                                                        "per_bandwidth": per})


def standardized(reference: Tensor, *xs: Tensor) -> tuple[Tensor, ...]:
    """Each of ``xs: (n, ...)`` flattened to float64 ``(n, d)`` and standardized per entry with the
    mean and standard deviation of ``reference`` (features of the sample metrics without a classifier)."""
    flat = reference.reshape(len(reference), -1).double()
    mu, sd = flat.mean(0), flat.std(0).clamp_min(1e-8)
    return tuple((x.reshape(len(x), -1).double() - mu) / sd for x in xs)
