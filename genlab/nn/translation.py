"""Networks of image-to-image translation (pix2pix, Isola et al. 2017; CycleGAN, Zhu et al. 2017).

* `UNet`: an encoder-decoder with skip connections between mirrored levels (Ronneberger et al.
  2015; pix2pix Sec. 3.2.1), any H and W (inputs are padded to a multiple of ``2^depth``).
* `PatchCritic`: a fully convolutional critic that scores overlapping patches (PatchGAN,
  pix2pix Sec. 3.2.2): (batch, C, H, W) -> (batch, 1, ceil(H / 2^k), ceil(W / 2^k)).

Group normalisation instead of batch normalisation: outputs never depend on the rest of the
batch (so the gradient penalty per example is well defined and samples are batch-independent).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conv import variance_preserving_init


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class UNet(nn.Module):
    """(batch, in_ch, H, W) -> (batch, out_ch, H, W).

    Args:
        in_ch, out_ch: channels of input and output.
        base: channels at full resolution (doubled per level, at most 256).
        depth: number of stride-2 levels.
        tanh: squash the output to (-1, 1) (targets rescaled to [-1, 1]).
    """

    def __init__(self, in_ch: int, out_ch: int, base: int = 32, depth: int = 2, tanh: bool = True):
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError("UNet: depth and base must be >= 1")
        chs = [min(base * 2**i, 256) for i in range(depth + 1)]
        self.depth, self.tanh = depth, tanh
        self.inc = nn.Sequential(nn.Conv2d(in_ch, chs[0], 3, padding=1), nn.LeakyReLU(0.2))
        self.downs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(chs[i], chs[i + 1], 4, stride=2, padding=1), _norm(chs[i + 1]),
                          nn.LeakyReLU(0.2)) for i in range(depth))
        self.mid = nn.Sequential(nn.Conv2d(chs[-1], chs[-1], 3, padding=1), _norm(chs[-1]), nn.ReLU())
        self.ups = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(chs[i + 1], chs[i], 4, stride=2, padding=1), _norm(chs[i]),
                          nn.ReLU()) for i in reversed(range(depth)))
        self.merges = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * chs[i], chs[i], 3, padding=1), nn.ReLU()) for i in reversed(range(depth)))
        self.out = nn.Conv2d(chs[0], out_ch, 3, padding=1)
        variance_preserving_init(self)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2:]
        m = 2**self.depth
        x = F.pad(x, (0, -w % m, 0, -h % m), mode="replicate")
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        u = self.mid(skips.pop())
        for up, merge in zip(self.ups, self.merges):
            u = merge(torch.cat([up(u), skips.pop()], 1))
        y = self.out(u)[:, :, :h, :w]
        return torch.tanh(y) if self.tanh else y


class PatchCritic(nn.Module):
    """PatchGAN: ``[Conv4x4 stride 2 -> (norm) -> LeakyReLU] * layers -> Conv3x3 -> 1 channel``.

    Each output scores one receptive field of the input (``6 * 2^layers - 2`` pixels wide:
    22 for two layers), so the critic judges local texture and sharpness; the L1 term of pix2pix
    takes care of the low frequencies.

    Args:
        in_ch: input channels (pix2pix: input and output images stacked).
        base: channels of the first layer (doubled per layer, at most 256).
        layers: stride-2 layers.
    """

    def __init__(self, in_ch: int, base: int = 32, layers: int = 2):
        super().__init__()
        mods: list[nn.Module] = []
        c = in_ch
        for i in range(layers):
            ch = min(base * 2**i, 256)
            mods += [nn.Conv2d(c, ch, 4, stride=2, padding=1)] + ([_norm(ch)] if i else []) + [nn.LeakyReLU(0.2)]
            c = ch
        mods.append(nn.Conv2d(c, 1, 3, padding=1))
        self.net = nn.Sequential(*mods)
        variance_preserving_init(self)

    def forward(self, x: Tensor) -> Tensor:
        """(batch, in_ch, H, W) -> (batch, 1, h, w) patch logits."""
        return self.net(x)
