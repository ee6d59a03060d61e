"""Gaussian kernel density estimate on the standardized (model-space) training points.

``p(z) = 1/N sum_i N(z; p_i, h^2 I)``. The bandwidth ``h`` is chosen on a log-spaced grid
around Scott's rule ``N^{-1/(D+4)}`` (Scott 1992; unit variances after standardization) by the
mean validation log-likelihood, or by the leave-one-out log-likelihood on the training points
when there is no validation set (likelihood cross-validation, Silverman 1986, section 3.4.4).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from ..taxonomy import BASELINE
from ..protocol import register, Batch, Density, GenerativeModel, Loss, Objective

_CHUNK = 1 << 22  # elements of one (queries, points) block: a few such blocks stay < 200 MB


@dataclass
class KDEConfig:
    bandwidth: float | None = field(default=None, metadata={
        "help": "kernel width in standardized units; None chooses it by validation likelihood"})
    n_candidates: int = field(default=20, metadata={
        "help": "bandwidths tried, log-spaced from 0.02 to 2 times Scott's rule"})
    max_points: int = field(default=20000, metadata={
        "help": "training points stored (a random subset if there are more)"})
    subsample_seed: int = field(default=0, metadata={"help": "seed of the random subset of training points kept"})
    renamed: ClassVar[dict[str, str]] = {"seed": "subsample_seed"}  # its name in runs saved before the rename


def kernel_log_sum(q: Tensor, points: Tensor, bandwidths: Tensor, loo: bool = False) -> Tensor:
    """log sum_i exp(-||q - p_i||^2 / (2 h^2)) for each query and bandwidth, in chunks.

    Args:
        q: (m, D) queries; points: (N, D); bandwidths: (H,).
        loo: leave one out: ``q`` are the points themselves and the i == n term is dropped.
    Returns:
        (m, H) log kernel sums (unnormalized: add ``-log N - D/2 log(2 pi h^2)``).
    """
    pp = points.square().sum(1)
    inv = (-0.5 / bandwidths.square())[:, None, None]  # (H, 1, 1)
    step = max(1, _CHUNK // (len(points) * len(bandwidths)))
    out = []
    for start in range(0, len(q), step):
        c = q[start:start + step]
        d2 = (c.square().sum(1, keepdim=True) + pp - 2 * c @ points.T).clamp_min(0)  # (m, N)
        if loo:
            rows = torch.arange(len(c), device=c.device)
            d2[rows, rows + start] = math.inf
        out.append(torch.logsumexp(inv * d2, 2).T)  # (m, H)
    return torch.cat(out)


@register("kde")
class KDE(GenerativeModel):
    """Gaussian KDE over the flattened model-space example.

    Buffers: ``points`` (N, D) stored training points (model space) and ``bandwidth`` ().
    """
    taxonomy = BASELINE

    in_default_compare = True  # one of `genlab compare`'s default families

    Config = KDEConfig
    density = Density.EXACT
    sampling = "fast"
    training = "bandwidth by validation likelihood"

    def __init__(self, spec, config: KDEConfig | None = None):
        super().__init__(spec, config or KDEConfig())
        bw = self.config.bandwidth
        if bw is not None and not bw > 0:
            raise ValueError(f"kde: bandwidth must be > 0, got {bw}")
        self.register_buffer("points", torch.zeros(0, spec.dim))
        self.register_buffer("bandwidth", torch.tensor(1.0 if bw is None else float(bw)))
        self.z_val: Tensor | None = None  # validation points in model space (not saved)

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """Store (a seeded random subset of) the training points, and the validation points."""
        super().setup(x, y, x_val)
        x = self.check_input(x)
        g = torch.Generator(device=x.device).manual_seed(self.config.subsample_seed)
        if len(x) > self.config.max_points:
            x = x[torch.randperm(len(x), generator=g, device=x.device)[:self.config.max_points]]
        z, _ = self.pre(x, g)
        self.points = z.reshape(len(z), -1).clone()
        self.z_val = None
        if x_val is not None:
            z_val, _ = self.pre(self.check_input(x_val), g)
            self.z_val = z_val.reshape(len(z_val), -1)

    def candidates(self) -> Tensor:
        """(n_candidates,) log-spaced bandwidths, 0.02 to 2 times Scott's rule N^{-1/(D+4)}."""
        n, D = self.points.shape
        scott = max(n, 1) ** (-1.0 / (D + 4))
        k = self.config.n_candidates
        return scott * torch.logspace(math.log10(0.02), math.log10(2.0), k,
                                      dtype=self.points.dtype, device=self.points.device)

    def objectives(self) -> list[Objective]:
        return [Objective("bandwidth", [], self._choose, full_batch=True)]

    @torch.no_grad()
    def _choose(self, batch: Batch) -> Loss:
        """Pick the bandwidth; the loss is the selection NLL (validation or leave-one-out),
        in data space, which unlike the train NLL of a KDE does not reward h -> 0."""
        self._check_fitted()
        loo = self.z_val is None
        if loo and len(self.points) < 2:
            raise ValueError("kde: leave-one-out needs at least 2 training points")
        hs = self.candidates() if self.config.bandwidth is None else self.bandwidth.reshape(1)
        q = self.points if loo else self.z_val.to(self.points)
        D = self.points.shape[1]
        norm = -math.log(len(self.points) - loo) - D * torch.log(hs) - 0.5 * D * math.log(2 * math.pi)
        scores = (kernel_log_sum(q, self.points, hs, loo) + norm).mean(0)  # (H,)
        best = int(scores.argmax())
        self.bandwidth.copy_(hs[best])
        _, logdet = self.pre(batch.x[:1], batch.generator)
        nll = -(scores[best] + logdet[0])
        logs = {"nll": nll.item(), "bandwidth": hs[best].item(), "loo": float(loo),
                "grid_min": hs[0].item(), "grid_max": hs[-1].item()}
        return Loss(nll, logs, done=True)

    def _check_fitted(self) -> None:
        if len(self.points) == 0:
            raise RuntimeError("kde: no stored points; call setup(x) (or fit) first")

    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        self._check_fitted()
        h = self.bandwidth.reshape(1)
        D = self.points.shape[1]
        lse = kernel_log_sum(z.reshape(len(z), -1), self.points, h)[:, 0]
        return lse - math.log(len(self.points)) - D * torch.log(h) - 0.5 * D * math.log(2 * math.pi)

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        self._check_fitted()
        idx = torch.randint(len(self.points), (n,), generator=generator, device=self.points.device)
        eps = torch.randn(n, self.points.shape[1], generator=generator,
                          dtype=self.points.dtype, device=self.points.device)
        return (self.points[idx] + self.bandwidth * eps).reshape(n, *self.spec.event_shape)
