"""Masked layers for autoregressive networks: MADE (Germain, Gregor, Murray & Larochelle 2015).

Each unit gets a *degree*: input entry ``d`` has degree ``rank(d)`` (its place in the ordering,
1..D); a hidden unit has a degree ``m`` in ``[min previous degree, D - 1]``; a hidden unit may
see a unit of the layer below whose degree is ``<= m`` (Eq. 12), an output for entry ``d`` may see
units of degree ``< rank(d)`` (Eq. 13). Then output ``d`` depends only on the entries before it.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaskedLinear(nn.Linear):
    """``y = x (W * M)^T + b`` with a 0/1 mask ``M: (out, in)``; several masks may be stored
    (``n_masks``, for order-agnostic training) and one is chosen per call."""

    def __init__(self, in_features: int, out_features: int, n_masks: int = 1, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("masks", torch.ones(n_masks, out_features, in_features))

    def forward(self, x: Tensor, which: int = 0) -> Tensor:
        """x: (batch, in_features) -> (batch, out_features), with mask number ``which``."""
        return F.linear(x, self.weight * self.masks[which].to(self.weight.dtype), self.bias)


def hidden_degrees(sizes: Sequence[int], dim: int, generator: torch.Generator) -> list[Tensor]:
    """Degrees of the hidden layers: each unit uniform in ``[previous minimum, dim - 1]`` (MADE
    Sec. 4.2: layer l's degrees start at the smallest degree of layer l-1 so no unit is dead)."""
    out, low = [], 1
    for h in sizes:
        if dim == 1:  # nothing to condition on: the hidden units carry only biases
            m = torch.zeros(h, dtype=torch.long)
        else:
            m = torch.randint(low, dim, (h,), generator=generator)
            low = int(m.min())
        out.append(m)
    return out


class MADE(nn.Module):
    """A masked MLP: (batch, D * in_per_dim) -> (batch, D, out_per_dim) autoregressive outputs.

    Args:
        dim: D, the number of entries.
        hidden: widths of the hidden layers.
        in_per_dim: features per entry at the input (1, or the levels of a one-hot input);
            the input is laid out entry-major: ``(batch, D, in_per_dim)`` flattened.
        out_per_dim: parameters per entry at the output.
        n_masks: number of (ordering, connectivity) mask sets (order-agnostic training,
            Germain et al. 2015 Sec. 4.2); set 0 uses the natural order 0, 1, ..., D-1.
        seed: seeds the orderings and hidden degrees, so masks are a function of the config.
        direct: add a masked linear map from the input straight to the output (Sec. 4.3).
    """

    def __init__(self, dim: int, hidden: Sequence[int], in_per_dim: int, out_per_dim: int,
                 n_masks: int = 1, seed: int = 0, direct: bool = True):
        super().__init__()
        if dim < 1 or n_masks < 1 or in_per_dim < 1 or out_per_dim < 1:
            raise ValueError("MADE: dim, n_masks, in_per_dim and out_per_dim must be >= 1")
        self.dim, self.in_per_dim, self.out_per_dim, self.n_masks = dim, in_per_dim, out_per_dim, n_masks
        widths = [dim * in_per_dim, *hidden]
        self.layers = nn.ModuleList(MaskedLinear(a, b, n_masks) for a, b in zip(widths[:-1], widths[1:]))
        self.out = MaskedLinear(widths[-1], dim * out_per_dim, n_masks)
        self.direct = MaskedLinear(dim * in_per_dim, dim * out_per_dim, n_masks, bias=False) if direct else None
        self.register_buffer("orders", torch.zeros(n_masks, dim, dtype=torch.long))
        g = torch.Generator().manual_seed(seed)
        for k in range(n_masks):
            order = torch.arange(dim) if k == 0 else torch.randperm(dim, generator=g)
            self._set_masks(k, order, hidden_degrees(hidden, dim, g))

    def _set_masks(self, k: int, order: Tensor, hidden: list[Tensor]) -> None:
        rank = torch.empty(self.dim, dtype=torch.long)
        rank[order] = torch.arange(1, self.dim + 1)  # rank[d] = place of entry d in the order
        self.orders[k] = order
        m_in = rank.repeat_interleave(self.in_per_dim)
        m_out = rank.repeat_interleave(self.out_per_dim)
        prev = m_in
        for layer, m in zip(self.layers, hidden):
            layer.masks[k] = (m[:, None] >= prev[None, :]).float()
            prev = m
        self.out.masks[k] = (m_out[:, None] > prev[None, :]).float()
        if self.direct is not None:
            self.direct.masks[k] = (m_out[:, None] > m_in[None, :]).float()

    def forward(self, x: Tensor, which: int = 0) -> Tensor:
        """x: (batch, D * in_per_dim) -> (batch, D, out_per_dim) with mask set ``which``."""
        h = x
        for layer in self.layers:
            h = F.silu(layer(h, which))
        y = self.out(h, which)
        if self.direct is not None:
            y = y + self.direct(x, which)
        return y.reshape(len(x), self.dim, self.out_per_dim)
