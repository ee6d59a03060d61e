"""RealNVP: a normalizing flow of affine coupling layers (Dinh, Sohl-Dickstein & Bengio 2017).

Each coupling layer keeps the entries selected by a binary mask ``m`` and moves the others:
``y = m*x + (1-m) * (x * exp(s(m*x)) + t(m*x))``, so ``log|det dy/dx| = sum((1-m) * s)``.
Masks alternate with their complement: for vectors the two halves (the conditioner sees only the
kept half, `genlab.nn.flows.AffineCoupling`), for images a checkerboard; a
learnable elementwise affine (ActNorm-like, Kingma & Dhariwal 2018, without batch statistics)
comes before each coupling. The base distribution is a standard normal.

``conditional=True`` on labelled data makes it conditional (`Conditional`): a learned label
embedding enters every coupling network, with label dropout so that ``condition=None`` is a
trained p(x); discrete data may use variational dequantization (Ho et al. 2019). Both come from the shared flow base,
`genlab.models._flow` (see there).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ..data.spec import DataSpec
from ..nn import ConvNet
from ..nn.flows import AffineCoupling, Permutation, with_context
from ..protocol import register, Density
from ._flow import FlowBase, FlowConfig


@dataclass
class RealNVPConfig(FlowConfig):
    n_layers: int = field(default=12, metadata={"max": 1_000, "help": "number of affine coupling layers"})
    hidden: int = field(default=128, metadata={
        "help": "hidden width of each coupling MLP (conv nets use hidden // 4 channels)"})
    depth: int = field(default=2, metadata={"max": 100, 
        "help": "hidden layers per coupling MLP (residual blocks per coupling conv net)"})
    # mlp, not auto, is the default: on digits the conv couplings took ~50x longer per step than the
    # MLP ones (bench/README.md); saved runs that say auto keep their conv couplings on images
    net: Literal["auto", "mlp", "conv"] = field(default="mlp", metadata={
        "help": "coupling network: mlp (images: over the two checkerboard colours of the flattened "
                "image) | conv | auto (conv for images, mlp for vectors)"})
    scale_bound: float = field(default=2.0, metadata={
        "help": "log-scales are squashed to bound * tanh(raw / bound) for stability"})


class ElementwiseAffine(nn.Module):
    """``y = x * exp(log_scale) + shift`` per entry, initialised to the identity."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(shape))
        self.shift = nn.Parameter(torch.zeros(shape))

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return torch.addcmul(self.shift, x, self.log_scale.exp()), self.log_scale.sum().expand(len(x))

    def inverse(self, y: Tensor, ctx: Tensor | None = None) -> Tensor:
        return (y - self.shift) * (-self.log_scale).exp()


class CheckerboardCoupling(nn.Module):
    """One affine coupling layer on images with a spatial mask (Dinh et al. 2017, Eq. 9).

    Args:
        mask: (C, H, W) of 0/1; entries where it is 1 pass through and condition the rest.
        net: maps the masked input plus the mask as an extra channel (plus a context, the label
            embedding, as constant channels) to ``2 * C`` channels: the raw log-scale and shift.
        bound: ``s = bound * tanh(raw / bound)``.
    """

    def __init__(self, mask: Tensor, net: nn.Module, bound: float):
        super().__init__()
        self.register_buffer("mask", mask, persistent=False)  # rebuilt from the config
        self.register_buffer("moved", 1 - mask, persistent=False)
        self.net, self.bound = net, bound

    def _scale_shift(self, x: Tensor, ctx: Tensor | None) -> tuple[Tensor, Tensor]:
        m = self.mask.to(x.dtype)
        inp = torch.cat([x * m, m[:1].expand(len(x), 1, *m.shape[1:])], 1)
        raw_s, t = self.net(with_context(inp, ctx)).chunk(2, dim=1)
        s = self.bound * torch.tanh(raw_s / self.bound)
        return s * self.moved, t * self.moved

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x: (batch, C, H, W), ctx: (batch, k) or None -> (y, log|det dy/dx|: (batch,))."""
        s, t = self._scale_shift(x, ctx)
        return torch.addcmul(t, x, s.exp()), s.flatten(1).sum(1)

    def inverse(self, y: Tensor, ctx: Tensor | None = None) -> Tensor:
        s, t = self._scale_shift(y, ctx)  # the masked entries are unchanged, so s, t are the same
        return (y - t) * (-s).exp()


def _checkerboards(shape: tuple[int, int, int], n: int) -> list[Tensor]:
    """Alternating checkerboard masks for (C, H, W) images."""
    c, h, w = shape
    base = ((torch.arange(h)[:, None] + torch.arange(w)[None]) % 2 == 0).float().expand(c, h, w).clone()
    return [base if k % 2 == 0 else 1 - base for k in range(n)]


@register("realnvp")
class RealNVP(FlowBase):
    """Affine coupling flow; exact ``log p(x)`` and one-pass sampling.

    ``log p(z) = log N(f(z); 0, I) + log|det df/dz|`` in model space, where ``f`` is the
    composition of (elementwise affine, coupling) pairs.
    """
    taxonomy = "flow"


    Config = RealNVPConfig
    density = Density.EXACT
    sampling = "fast"
    training = "MLE"
    latent_kind = "R^D"  # genlab list: the latent space is the base space, as large as the data
    default_epochs = 200  # moons: ~6,400 steps of 256 to come within 0.03 nats of the entropy
    # a cosine decay removes the +-0.04 nats of step-to-step noise that a constant rate leaves
    default_train = {"lr_schedule": "cosine", "patience": 30}

    def __init__(self, spec: DataSpec, config: RealNVPConfig):
        super().__init__(spec, config)  # refuses categorical / text data
        if config.n_layers < 1 or config.hidden < 1 or config.depth < 0 or config.scale_bound <= 0:
            raise ValueError("realnvp: n_layers and hidden must be >= 1, depth >= 0, scale_bound > 0")
        conv = config.net == "conv" or (config.net == "auto" and spec.is_image)
        if conv and not spec.is_image:
            raise ValueError(f"realnvp.net='conv' needs (C, H, W) images; got event_shape {spec.event_shape}")
        shape = spec.event_shape if conv else (spec.dim,)
        self.shape = shape
        self.norms = nn.ModuleList(ElementwiseAffine(shape) for _ in range(config.n_layers))
        if conv:  # spatial checkerboards; the mask enters the conv net as an extra channel
            c = shape[0]
            self.couplings = nn.ModuleList(CheckerboardCoupling(
                mask, ConvNet(c + 1 + self.ctx_dim, 2 * c, hidden=max(config.hidden // 4, 8), blocks=config.depth),
                config.scale_bound) for mask in _checkerboards(shape, config.n_layers))
        else:  # halves, alternating which half moves; each conditioner sees only the other half
            self.couplings = nn.ModuleList(
                AffineCoupling(spec.dim, False, config.hidden, config.depth, self.ctx_dim, config.scale_bound,
                               swap=k % 2 == 1) for k in range(config.n_layers))
        # MLP couplings on images: the halves are the two colours of a spatial checkerboard (every
        # pixel's neighbours condition it), not the top and bottom of the flattened image, whose
        # halves share few neighbours (bench/README.md). A fixed permutation on entry, undone on
        # exit (log|det| 0).
        self.entry: Permutation | None = None
        if not conv and spec.is_image:
            board = _checkerboards(spec.event_shape, 1)[0].flatten()
            self.entry = Permutation(torch.argsort(1 - board, stable=True))  # black squares first

    def _flow(self, z: Tensor, ctx: Tensor | None) -> tuple[Tensor, Tensor]:
        x = z.reshape(len(z), *self.shape)
        if self.entry is not None:
            x, _ = self.entry(x)
        log_det = x.new_zeros(len(x))
        for norm, coupling in zip(self.norms, self.couplings):
            x, ld = norm(x)
            log_det = log_det + ld
            x, ld = coupling(x, ctx)
            log_det = log_det + ld
        if self.entry is not None:
            x = self.entry.inverse(x)
        return x.reshape(z.shape), log_det

    def _flow_inverse(self, u: Tensor, ctx: Tensor | None) -> Tensor:
        x = u.reshape(len(u), *self.shape)
        if self.entry is not None:
            x, _ = self.entry(x)
        for norm, coupling in zip(reversed(self.norms), reversed(self.couplings)):
            x = norm.inverse(coupling.inverse(x, ctx))
        if self.entry is not None:
            x = self.entry.inverse(x)
        return x.reshape(u.shape)
