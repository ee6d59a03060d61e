"""Spectrally normalised layers and the invertible residual block (Behrmann et al. 2019).

* `SpectralLinear`: ``W_hat = W / max(1, sigma(W) / c)`` with ``sigma`` estimated by power
  iteration (Miyato et al. 2018), so ``||W_hat||_2 <= c`` (up to the power-iteration error).
* `InvertibleResBlock`: ``y = x + g(x)`` with ``g`` a spectrally normalised MLP whose
  activations are 1-Lipschitz, so ``Lip(g) <= c^layers < 1``; inverse by fixed-point iteration
  (Banach), ``log|det(I + J_g)|`` exactly (small D: forward-mode Jacobian, ``slogdet``) or by
  the truncated power series with a Hutchinson trace estimator (Behrmann et al. 2019, Eq. 6-7).

The power iteration is not run inside ``forward``: `SpectralLinear.power_iteration` is called
explicitly (by the training objective), so evaluation, sampling and inversion are pure functions of
the saved parameters and buffers (identical results after save/load).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FixedPointError(RuntimeError):
    """The fixed-point inverse of an i-ResNet block did not converge."""


class SpectralLinear(nn.Module):
    """A linear layer with spectral norm at most ``coeff``: (batch, in_dim) -> (batch, out_dim).

    Args:
        in_dim, out_dim: features.
        coeff: the bound ``c`` on the largest singular value (``0 < c``; ``< 1`` for i-ResNets).
    Buffers ``u: (out_dim,)``, ``v: (in_dim,)`` hold the power-iteration vectors; they are random
    unit vectors drawn at construction (from the global RNG, like the weights) and refined by
    `power_iteration`.
    """

    def __init__(self, in_dim: int, out_dim: int, coeff: float = 0.9):
        super().__init__()
        if not coeff > 0:
            raise ValueError(f"SpectralLinear: coeff must be > 0, got {coeff}")
        self.coeff = coeff
        lin = nn.Linear(in_dim, out_dim)
        self.weight, self.bias = lin.weight, lin.bias
        self.register_buffer("u", F.normalize(torch.randn(out_dim), dim=0))
        self.register_buffer("v", F.normalize(torch.randn(in_dim), dim=0))

    @torch.no_grad()
    def power_iteration(self, n: int = 1) -> None:
        """Refine ``u, v`` toward the top singular vectors of ``W`` with ``n`` iterations."""
        w = self.weight.detach()
        u, v = self.u, self.v
        for _ in range(n):
            v = F.normalize(w.t() @ u, dim=0, eps=1e-12)
            u = F.normalize(w @ v, dim=0, eps=1e-12)
        self.u.copy_(u)
        self.v.copy_(v)

    def sigma(self) -> Tensor:
        """The power-iteration estimate ``u^T W v`` of the largest singular value (a scalar,
        differentiable in ``W``; never above the true value)."""
        return torch.dot(self.u, self.weight @ self.v)

    def normalized_weight(self) -> Tensor:
        """``W / max(1, sigma / c)``: (out_dim, in_dim)."""
        return self.weight / torch.clamp(self.sigma() / self.coeff, min=1.0)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)


class LipSwish(nn.Module):
    """``x * sigmoid(x) / 1.1``: smooth and 1-Lipschitz (Chen et al. 2019, Residual Flows)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x) / 1.1

    @staticmethod
    def derivative(x: Tensor) -> Tensor:
        """Elementwise derivative ``(s + x s (1 - s)) / 1.1``, ``s = sigmoid(x)``."""
        s = torch.sigmoid(x)
        return (s + x * s * (1 - s)) / 1.1


class InvertibleResBlock(nn.Module):
    """``y = x + g(x)``, ``g`` = spectrally normalised MLP; x, y: (batch, dim).

    Args:
        dim: features.
        hidden: widths of the hidden layers of ``g``.
        coeff: spectral bound of every layer, so ``Lip(g) <= coeff^(len(hidden)+1) < 1``.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...], coeff: float = 0.9):
        super().__init__()
        if not 0 < coeff < 1:
            raise ValueError(f"iresnet: coeff must lie in (0, 1) for the block to be invertible, got {coeff}")
        widths = [dim, *hidden, dim]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [SpectralLinear(a, b, coeff), LipSwish()]
        self.g = nn.Sequential(*layers[:-1])
        self.dim = dim

    def power_iteration(self, n: int = 1) -> None:
        for m in self.g:
            if isinstance(m, SpectralLinear):
                m.power_iteration(n)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.g(x)

    @torch.no_grad()
    def inverse(self, y: Tensor, tol: float = 1e-5, max_iter: int = 500) -> Tensor:
        """Solve ``x + g(x) = y`` by ``x_{k+1} = y - g(x_k)`` (a contraction, Behrmann et al.
        2019, Alg. 1). Stops when ``max|x_{k+1} - x_k| <= tol``; raises `FixedPointError` naming the
        residual otherwise. y: (batch, dim) -> x: (batch, dim)."""
        x = y.clone()
        step = float("inf")
        for _ in range(max_iter):
            x_new = y - self.g(x)
            step = float((x_new - x).abs().max())
            x = x_new
            if step <= tol:
                return x
        raise FixedPointError(f"i-ResNet inverse did not converge: the last step was {step:.3g} > tol {tol:g} "
                              f"after {max_iter} iterations; raise max_iter or tol, or lower coeff "
                              "(a block whose Lipschitz constant approaches 1 converges slowly)")

    def jacobian(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``g(x)`` and its per-example Jacobian by forward-mode accumulation through the layers
        (``J <- W J`` at a linear layer, ``J <- phi'(h) * J`` at an activation); the cost is
        ``dim`` times a forward pass, so use it for small ``dim``. Differentiable.

        x: (batch, dim) -> (g(x): (batch, dim), J_g: (batch, dim, dim)), ``J[b, i, j] = dg_i/dx_j``.
        """
        h = x
        jac = torch.eye(self.dim, dtype=x.dtype, device=x.device).expand(len(x), self.dim, self.dim)
        for m in self.g:
            if isinstance(m, SpectralLinear):
                w = m.normalized_weight()
                h, jac = F.linear(h, w, m.bias), w @ jac
            else:
                h, jac = m(h), m.derivative(h).unsqueeze(-1) * jac
        return h, jac

    def forward_exact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(y, log|det(I + J_g)|)`` with the full Jacobian: (batch, dim) -> ((batch, dim), (batch,)).
        ``det(I + J_g) > 0`` because every eigenvalue of ``J_g`` has modulus < 1."""
        gx, jac = self.jacobian(x)
        eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
        return x + gx, torch.linalg.slogdet(eye + jac)[1]

    def forward_series(self, x: Tensor, n_terms: int, n_samples: int, generator: torch.Generator | None,
                       create_graph: bool) -> tuple[Tensor, Tensor]:
        """``(y, estimate of log|det(I + J_g)|)``: (batch, dim) -> ((batch, dim), (batch,)).

        ``log det(I + J) = sum_k (-1)^(k+1) tr(J^k) / k`` (converges as ``||J|| < 1``), truncated
        at ``n_terms``; each trace by Hutchinson, ``tr(A) = E[v^T A v]``, ``v ~ N(0, I)`` drawn from
        ``generator``, averaged over ``n_samples`` vectors; ``v^T J^k`` by k vector-Jacobian
        products (Behrmann et al. 2019, Eq. 7). Unbiased per term; biased by the truncation.
        """
        x = x if x.requires_grad else x.requires_grad_(True)
        gx = self.g(x)
        total = x.new_zeros(len(x))
        for _ in range(n_samples):
            v = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            w = v
            for k in range(1, n_terms + 1):
                w = torch.autograd.grad(gx, x, w, create_graph=create_graph, retain_graph=True)[0]
                total = total + (-1) ** (k + 1) * (w * v).sum(1) / k
        return x + gx, total / n_samples


def series_logdet_exact_trace(jac: Tensor, n_terms: int) -> Tensor:
    """The truncated series ``sum_{k<=n} (-1)^(k+1) tr(J^k)/k`` with exact traces.

    jac: (batch, D, D) -> (batch,). With ``||J|| <= L < 1`` its error is at most
    ``D * L^(n+1) / ((n+1) (1-L))`` (each omitted ``|tr(J^k)| <= D L^k``).
    """
    power = jac
    total = jac.new_zeros(jac.shape[0])
    for k in range(1, n_terms + 1):
        total = total + (-1) ** (k + 1) * torch.diagonal(power, dim1=1, dim2=2).sum(-1) / k
        power = power @ jac
    return total
