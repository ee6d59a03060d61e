"""Convolutional building blocks for (channels, height, width) data of any height and width.

* `ConvEncoder`: stride-2 convolutions, then an MLP head: image -> vector.
* `ConvDecoder`: an MLP to a coarse feature map, transposed convolutions, a crop: vector -> image.
* `ConvNet`: a small residual network that keeps the spatial size (coupling layers, Dinh et al. 2017).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from torch import Tensor, nn

Act = Callable[[], nn.Module]


def variance_preserving_init(module: nn.Module) -> None:
    """He initialisation (He et al. 2015) of every linear / (transposed) convolution, zero biases.

    PyTorch's default init shrinks activations by ~3x per layer, so a 5-layer decoder starts with
    outputs that barely depend on its input (a GAN generator then collapses before it learns);
    with this init the output scale is ~1 at any depth. The fan-in of a transposed convolution is
    ``in_channels * k^2 / stride^2`` (each output sees that many weights).
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if isinstance(m, nn.ConvTranspose2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1] / (m.stride[0] * m.stride[1])
            else:
                fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))
            nn.init.zeros_(m.bias)


class ConvEncoder(nn.Module):
    """Image -> vector: ``[Conv3x3 stride 2 -> act] * len(channels) -> Linear -> act -> Linear``.

    Each stride-2 convolution (padding 1) maps a side ``s`` to ``ceil(s / 2)``, so any H, W work
    (8x8 -> 2x2, 28x28 -> 7x7 with two layers); the flattened size is computed at construction.

    Args:
        in_shape: (C, H, W) of one input.
        out_dim: output features.
        channels: output channels of the convolutions.
        hidden: width of the hidden linear layer.
        act: activation factory (``functools.partial(nn.LeakyReLU, 0.2)`` for a DCGAN critic).
    """

    def __init__(self, in_shape: Sequence[int], out_dim: int, channels: Sequence[int] = (32, 64),
                 hidden: int = 256, act: Act = nn.SiLU):
        super().__init__()
        c, h, w = in_shape
        layers: list[nn.Module] = []
        for ch in channels:
            layers += [nn.Conv2d(c, ch, 3, stride=2, padding=1), act()]
            c, h, w = ch, math.ceil(h / 2), math.ceil(w / 2)
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), act(),
                                  nn.Linear(hidden, out_dim))
        variance_preserving_init(self)
        self.in_shape, self.out_dim = tuple(in_shape), out_dim

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, C, H, W) -> (batch, out_dim)."""
        return self.head(self.convs(x))


class ConvDecoder(nn.Module):
    """Vector -> image: ``Linear -> act -> Linear`` to (channels[0], ceil(H/2^k), ceil(W/2^k)),
    then ``k = len(channels)`` transposed convolutions (kernel 4, stride 2: each doubles the
    side), a 3x3 convolution to C channels, and a crop to (H, W). DCGAN-like (Radford et al. 2016)
    without batch normalisation, so outputs never depend on the rest of the batch.

    Args:
        in_dim: input features (latent size).
        out_shape: (C, H, W) of one output.
        channels: channels of the feature maps, coarse to fine.
        hidden: width of the hidden linear layer.
        act: activation factory.
    """

    def __init__(self, in_dim: int, out_shape: Sequence[int], channels: Sequence[int] = (64, 32),
                 hidden: int = 256, act: Act = nn.SiLU):
        super().__init__()
        c, h, w = out_shape
        k = len(channels)
        self.start = (channels[0], math.ceil(h / 2**k), math.ceil(w / 2**k))
        self.head = nn.Sequential(nn.Linear(in_dim, hidden), act(),
                                  nn.Linear(hidden, math.prod(self.start)))
        layers: list[nn.Module] = []
        chs = [*channels, channels[-1]]
        for a, b in zip(chs[:-1], chs[1:]):
            layers += [act(), nn.ConvTranspose2d(a, b, 4, stride=2, padding=1)]
        layers += [act(), nn.Conv2d(chs[-1], c, 3, padding=1)]
        self.convs = nn.Sequential(*layers)
        variance_preserving_init(self)
        self.in_dim, self.out_shape = in_dim, tuple(out_shape)

    def forward(self, z: Tensor) -> Tensor:
        """z: (batch, in_dim) -> (batch, C, H, W)."""
        x = self.convs(self.head(z).reshape(len(z), *self.start))
        return x[:, :, :self.out_shape[1], :self.out_shape[2]]


class ResBlock(nn.Module):
    """``x + Conv3x3(act(Conv3x3(act(x))))`` at constant channels and size (He et al. 2016)."""

    def __init__(self, ch: int, act: Act = nn.SiLU):
        super().__init__()
        self.net = nn.Sequential(act(), nn.Conv2d(ch, ch, 3, padding=1),
                                 act(), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class ConvNet(nn.Module):
    """A small residual network that keeps (H, W): (batch, in_ch, H, W) -> (batch, out_ch, H, W).

    ``Conv3x3 -> ResBlock * blocks -> act -> Conv3x3``; with ``zero_last`` the output starts at 0,
    so a coupling layer built on it starts as the identity (Dinh et al. 2017, Sec. 4.1).

    Args:
        in_ch: input channels.
        out_ch: output channels.
        hidden: channels inside the network.
        blocks: number of residual blocks.
        zero_last: initialise the last convolution to zero.
        act: activation factory.
    """

    def __init__(self, in_ch: int, out_ch: int, hidden: int = 64, blocks: int = 2,
                 zero_last: bool = True, act: Act = nn.SiLU):
        super().__init__()
        last = nn.Conv2d(hidden, out_ch, 3, padding=1)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Conv2d(in_ch, hidden, 3, padding=1),
                                 *[ResBlock(hidden, act) for _ in range(blocks)], act(), last)

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, in_ch, H, W) -> (batch, out_ch, H, W)."""
        return self.net(x)

