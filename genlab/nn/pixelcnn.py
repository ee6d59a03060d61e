"""Gated PixelCNN layers (van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu 2016,
"Conditional Image Generation with PixelCNN Decoders", Sec. 2.1-2.2).

Two stacks avoid the blind spot of the original masked 3x3 PixelCNN: the *vertical* stack sees
every pixel in the rows above (a ``(k//2 + 1) x k`` kernel padded only on top), the *horizontal*
stack sees the pixels to the left in the current row (a ``1 x (k//2 + 1)`` kernel padded only on
the left) plus the vertical stack's features. In the first layer the kernels' last row / column
(the current row / pixel) are masked out; after that, vertical features at row i depend only on
rows < i, and horizontal features at (i, j) only on pixels before (i, j) in raster order.
Each layer's output is ``tanh(a) * sigmoid(b)`` (Eq. 2); the horizontal stack is residual.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ShiftedConv2d(nn.Conv2d):
    """A convolution whose output at (i, j) sees only inputs at rows <= i and (for the
    horizontal kind) columns <= j of row i; ``exclude_center`` also drops row i (vertical) or
    pixel (i, j) (horizontal).

    Args:
        kind: ``"vertical"`` (kernel ``(k//2 + 1, k)``) or ``"horizontal"`` (``(1, k//2 + 1)``).
    """

    def __init__(self, cin: int, cout: int, k: int, kind: str, exclude_center: bool):
        r = k // 2
        shape = (r + 1, k) if kind == "vertical" else (1, r + 1)
        super().__init__(cin, cout, shape)
        self.pad = (r, r, r, 0) if kind == "vertical" else (r, 0, 0, 0)  # left, right, top, bottom
        mask = torch.ones(shape)
        if exclude_center:
            if kind == "vertical":
                mask[-1, :] = 0
            else:
                mask[:, -1] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, cin, H, W) -> (batch, cout, H, W)."""
        return F.conv2d(F.pad(x, self.pad), self.weight * self.mask.to(self.weight.dtype), self.bias)


class GatedLayer(nn.Module):
    """One gated layer of both stacks: (v, h) -> (v', h'), each (batch, channels, H, W)."""

    def __init__(self, cin: int, c: int, k: int, first: bool):
        super().__init__()
        self.first = first
        self.v = ShiftedConv2d(cin, 2 * c, k, "vertical", exclude_center=first)
        self.h = ShiftedConv2d(cin, 2 * c, k, "horizontal", exclude_center=first)
        self.v_to_h = nn.Conv2d(2 * c, 2 * c, 1)
        self.h_out = nn.Conv2d(c, c, 1)

    @staticmethod
    def _gate(x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, v: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        vf = self.v(v)
        h_new = self.h_out(self._gate(self.h(h) + self.v_to_h(vf)))
        return self._gate(vf), h_new if self.first else h + h_new


class GatedPixelCNN(nn.Module):
    """A stack of gated layers: image features (batch, cin, H, W) -> (batch, cout, H, W) where
    output (i, j) depends only on input pixels before (i, j) in raster order (all channels).

    Args:
        cin: input channels; cout: output channels; channels: hidden channels;
        n_layers: gated layers (>= 1); kernel: odd kernel width k.
    """

    def __init__(self, cin: int, cout: int, channels: int = 32, n_layers: int = 5, kernel: int = 3):
        super().__init__()
        if kernel < 3 or kernel % 2 == 0 or n_layers < 1 or channels < 1:
            raise ValueError("GatedPixelCNN: kernel must be odd and >= 3, n_layers and channels >= 1")
        self.layers = nn.ModuleList(GatedLayer(cin if i == 0 else channels, channels, kernel, first=i == 0)
                                    for i in range(n_layers))
        self.out = nn.Sequential(nn.ELU(), nn.Conv2d(channels, channels, 1), nn.ELU(),
                                 nn.Conv2d(channels, cout, 1))

    def forward(self, x: Tensor) -> Tensor:
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.out(h)
