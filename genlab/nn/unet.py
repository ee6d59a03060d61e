"""Time-conditioned networks for diffusion models (Ho et al. 2020, App. B).

* `TimeEmbedding`: sinusoidal features of the timestep (Vaswani et al. 2017) -> MLP, plus an
  optional class embedding (with one extra "null" class for classifier-free guidance).
* `TimeMLP`: residual MLP for vectors, the embedding added inside every block.
* `UNet`: a small U-Net for (C, H, W) images: residual blocks with GroupNorm and the embedding
  added after the first convolution; a down/up level for each halving of an even side that leaves
  at least 4 pixels (8x8: one level, 8 -> 4; 28x28: two, 28 -> 14 -> 7).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoidal(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """(batch,) float times -> (batch, dim) features ``[cos(t w_k), sin(t w_k)]``, ``w_k`` geometric."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], 1)
    return F.pad(emb, (0, dim % 2)).to(t.dtype if t.is_floating_point() else torch.float32)


class TimeEmbedding(nn.Module):
    """``t: (batch,)`` (and labels ``y: (batch,)``) -> (batch, out_dim).

    Args:
        dim: sinusoidal features.
        out_dim: embedding width.
        num_classes: if given, a learned class embedding with ``num_classes + 1`` rows is added;
            label ``num_classes`` is the null label of classifier-free guidance (Ho & Salimans 2022).
    """

    def __init__(self, dim: int, out_dim: int, num_classes: int | None = None):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))
        self.classes = nn.Embedding(num_classes + 1, out_dim) if num_classes else None

    def forward(self, t: Tensor, y: Tensor | None = None) -> Tensor:
        e = self.mlp(sinusoidal(t, self.dim).to(self.mlp[0].weight.dtype))
        if self.classes is not None:
            if y is None:
                raise ValueError("this network is class-conditional: pass labels y (the null label for none)")
            e = e + self.classes(y)
        return e


class TimeMLP(nn.Module):
    """Residual MLP ``(x_t, t, y) -> eps`` for vectors: (batch, D) -> (batch, out_dim), out_dim D by default.

    ``h <- h + W2 act(W1 act(h) + E e)`` per block, ``e`` the time (and class) embedding; the
    output layer starts at zero (the predicted noise starts at 0).
    """

    def __init__(self, dim: int, hidden: int = 128, blocks: int = 3, num_classes: int | None = None,
                 out_dim: int | None = None):
        super().__init__()
        self.emb = TimeEmbedding(hidden, hidden, num_classes)
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(nn.ModuleDict({"w1": nn.Linear(hidden, hidden), "e": nn.Linear(hidden, hidden),
                                                   "w2": nn.Linear(hidden, hidden)}) for _ in range(blocks))
        self.out = nn.Linear(hidden, out_dim or dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """x: (batch, D), t: (batch,) float, y: (batch,) int64 or None -> (batch, D)."""
        e = self.emb(t, y)
        h = self.inp(x)
        for b in self.blocks:
            h = h + b["w2"](F.silu(b["w1"](F.silu(h)) + b["e"](e)))
        return self.out(F.silu(h))


def _groups(ch: int) -> int:
    return math.gcd(ch, 8)


class ResBlock(nn.Module):
    """``x + conv(act(norm(conv(act(norm(x))) + E e)))`` with a 1x1 skip when channels change."""

    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(_groups(cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.e = nn.Linear(emb_dim, cout)
        self.n2, self.c2 = nn.GroupNorm(_groups(cout), cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        h = self.c1(F.silu(self.n1(x))) + self.e(e)[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


def auto_levels(h: int, w: int) -> int:
    """Halvings of an even side that leave at least 4 pixels: 8 -> 1, 28 -> 2, 32 -> 3, 7 -> 0."""
    n = 0
    while h % 2 == 0 and w % 2 == 0 and h // 2 >= 4 and w // 2 >= 4:
        h, w, n = h // 2, w // 2, n + 1
    return n


class UNet(nn.Module):
    """A small U-Net ``(x_t, t, y) -> eps``: (batch, C, H, W) -> (batch, out_ch, H, W), out_ch C by default.

    Level ``i`` works at ``channels * 2**min(i, 2)`` channels (one ResBlock, then a stride-2
    convolution); two ResBlocks in the middle; each up level upsamples (nearest + conv, computed as
    one transposed convolution by `upsample_conv`), joins the skip connection and applies one
    ResBlock. The output convolution starts at zero.

    Args:
        in_ch: image channels C.
        size: (H, W), to choose the number of levels.
        channels: channels of the first level.
        levels: number of down/up levels; None: `auto_levels`.
        num_classes: class-conditional with a null label (see `TimeEmbedding`).
        out_ch: output channels (None: C).
    """

    def __init__(self, in_ch: int, size: tuple[int, int], channels: int = 32, levels: int | None = None,
                 num_classes: int | None = None, out_ch: int | None = None):
        super().__init__()
        n = auto_levels(*size) if levels is None else levels
        emb = 4 * channels
        self.emb = TimeEmbedding(channels, emb, num_classes)
        self.inp = nn.Conv2d(in_ch, channels, 3, padding=1)
        chs = [channels * 2 ** min(i, 2) for i in range(n + 1)]
        self.down = nn.ModuleList(ResBlock(chs[max(i - 1, 0)], chs[i], emb) for i in range(n))
        self.pool = nn.ModuleList(nn.Conv2d(chs[i], chs[i], 3, stride=2, padding=1) for i in range(n))
        self.mid = nn.ModuleList([ResBlock(chs[n - 1] if n else channels, chs[n], emb), ResBlock(chs[n], chs[n], emb)])
        self.upconv = nn.ModuleList(nn.Conv2d(chs[i + 1], chs[i + 1], 3, padding=1) for i in range(n))
        self.up = nn.ModuleList(ResBlock(chs[i + 1] + chs[i], chs[i], emb) for i in range(n))
        self.norm_out = nn.GroupNorm(_groups(chs[0]), chs[0])
        self.out = nn.Conv2d(chs[0], out_ch or in_ch, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.levels = n

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """x: (batch, C, H, W), t: (batch,) float, y: (batch,) int64 or None -> (batch, C, H, W)."""
        e = self.emb(t, y)
        h = self.inp(x)
        skips = []
        for res, pool in zip(self.down, self.pool):
            h = res(h, e)
            skips.append(h)
            h = pool(h)
        for res in self.mid:
            h = res(h, e)
        for i in reversed(range(self.levels)):
            s = skips.pop()
            h = self.up[i](torch.cat([upsample_conv(h, self.upconv[i], s.shape[-2:]), s], 1), e)
        return self.out(F.silu(self.norm_out(h)))


# Nearest 2x upsampling then a 3x3 convolution (padding 1), along each axis: output 2m reads inputs
# m - 1, m with taps w0, w1 + w2 and output 2m + 1 reads m, m + 1 with taps w0 + w1, w2. That is a
# stride-2 transposed convolution (padding 1) with the 4-tap kernel K = A w A^T: K[0] = w2,
# K[1] = w1 + w2, K[2] = w0 + w1, K[3] = w0 (rows of A below).
_UPSAMPLE_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def upsample_conv(h: Tensor, conv: nn.Conv2d, size: tuple[int, int]) -> Tensor:
    """``conv(F.interpolate(h, size, mode="nearest"))``: (batch, C, h, w) -> (batch, C', *size).

    When ``size`` is twice h's and ``conv`` is a plain 3x3 convolution with padding 1, this
    resize-convolution (Odena et al. 2016) is computed as one stride-2 transposed convolution whose
    4x4 kernel sums the 3x3 taps that read the same input pixel: 4 instead of 9 taps per output
    pixel, and no upsampled image in memory. The result is the same up to float rounding (taps
    are summed before multiplying); gradients flow to ``conv``'s weight and bias as before.
    """
    plain = (conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
             and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros")
    if not plain or tuple(size) != (2 * h.shape[-2], 2 * h.shape[-1]):
        return conv(F.interpolate(h, size=tuple(size), mode="nearest"))
    a = torch.tensor(_UPSAMPLE_TAPS, dtype=conv.weight.dtype, device=conv.weight.device)
    k = torch.einsum("ak,oikl,bl->ioab", a, conv.weight, a)  # (C, C', 4, 4): conv_transpose2d's layout
    return F.conv_transpose2d(h, k, conv.bias, stride=2, padding=1)
