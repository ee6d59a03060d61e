"""Multi-layer perceptron: the default network for vector data."""
from __future__ import annotations

from typing import Callable, Sequence

from torch import Tensor, nn


class MLP(nn.Sequential):
    """``Linear -> act -> ... -> Linear``: maps (batch, in_dim) to (batch, out_dim).

    Args:
        in_dim: input features.
        out_dim: output features.
        hidden: widths of the hidden layers (empty: a single linear map).
        act: activation factory, called once per hidden layer (``nn.SiLU``,
            ``functools.partial(nn.LeakyReLU, 0.2)``, ...).
        zero_last: initialise the last layer to zero, so the network starts as the constant 0
            (an identity coupling layer in a flow, Dinh et al. 2017; Kingma & Dhariwal 2018).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256),
                 act: Callable[[], nn.Module] = nn.SiLU, zero_last: bool = False):
        widths = [in_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), act()]
        last = nn.Linear(widths[-1], out_dim)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        super().__init__(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, in_dim) -> (batch, out_dim)."""
        return super().forward(x)
