"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

``p(x) = prod_i prod_c p(x_{i,c} | x_{<i}, x_{i,<c})`` over pixels ``i`` in raster order and
channels ``c``: the gated vertical / horizontal stacks (`genlab.nn.pixelcnn`) read only the
pixels before ``i`` (all channels); the earlier channels of pixel ``i`` enter through a 1x1 map
of the image masked to channels ``< c`` (a linear dependence, like the mean coupling of
PixelCNN++, Salimans et al. 2017, Sec. 2.2). Conditionals over the levels: a softmax
(``output="softmax"``) or a mixture of discretized logistics (``output="logistic_mixture"``,
Salimans et al. 2017, Sec. 2.1). ``log p(x)`` is exact, in nats, for the discrete data as given.

Discrete or binary images only: vectors and continuous images raise `NotSupported` (use made or
transformer for vectors, a flow for continuous images).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ..data.preprocess import Preprocess
from ..data.spec import DataSpec, Kind
from ..nn.pixelcnn import GatedPixelCNN
from ..protocol import register, Autoregressive, Density, GenerativeModel, NotSupported, Objective
from ._autoregressive import check_temperature, input_features, make_head, make_preprocess


@dataclass
class PixelCNNConfig:
    channels: int = field(default=32, metadata={"help": "hidden channels of the gated stacks"})
    n_layers: int = field(default=5, metadata={"max": 1_000, "help": "gated layers"})
    kernel: int = field(default=3, metadata={"help": "odd kernel width of the stacks (3, 5, ...)"})
    output: Literal["softmax", "logistic_mixture"] = field(default="softmax", metadata={
        "help": "per-pixel conditional: softmax (over the levels) | logistic_mixture"})
    components: int = field(default=5, metadata={"help": "logistics per mixture (logistic_mixture only)"})
    temperature: float = field(default=1.0, metadata={
        "help": "sampling temperature (logits / T; logistic scales * T); 1 = the model"})


@register("pixelcnn")
class PixelCNN(GenerativeModel, Autoregressive):
    """Gated PixelCNN over (C, H, W) images of discrete levels."""
    taxonomy = "autoregressive"

    Config = PixelCNNConfig
    density = Density.EXACT
    data_kinds = frozenset(Kind) - {Kind.CONTINUOUS}
    sampling = "slow"
    training = "MLE"
    default_epochs = 50

    def __init__(self, spec: DataSpec, config: PixelCNNConfig):
        super().__init__(spec, config)
        if not spec.is_image:
            raise NotSupported(f"pixelcnn models (C, H, W) images; got event_shape {spec.event_shape}. "
                               "Use made or transformer for vectors")
        check_temperature(config.temperature)
        self.head = make_head(spec, config.components, config.output)
        c, self.n_params = spec.event_shape[0], self.head.n_params
        one_hot = spec.kind is Kind.CATEGORICAL and config.output == "softmax"
        cin = c * spec.levels if one_hot else c
        self.net = GatedPixelCNN(cin, c * self.n_params, config.channels, config.n_layers, config.kernel)
        if c > 1:  # channel c of a pixel reads channels < c of the same pixel
            self.channel_map = nn.Conv2d(c, c * self.n_params, 1, bias=False)
            cout = torch.arange(c).repeat_interleave(self.n_params)
            self.register_buffer("channel_mask", (cout[:, None] > torch.arange(c)[None, :]).float()[..., None, None],
                                 persistent=False)

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        return make_preprocess(spec, self.config.output)

    def _scalar(self, z: Tensor) -> Tensor:
        """Model-space values as one number per channel (levels on [-1, 1])."""
        return z if self.config.output == "logistic_mixture" else 2 * z / (self.spec.levels - 1) - 1

    def ar_orders(self) -> Tensor:
        """Raster order over pixels, channels within a pixel: (1, D) indices into (C, H, W) flattened."""
        c, h, w = self.spec.event_shape
        return torch.arange(self.spec.dim).reshape(c, h, w).permute(1, 2, 0).flatten()[None]

    def entry_params(self, z: Tensor, k: int = 0) -> Tensor:
        return self.conditionals(z.reshape(len(z), *self.spec.event_shape)).flatten(1, 3)

    def conditionals(self, z: Tensor) -> Tensor:
        """Parameters of every ``p(z_{i,c} | z_{<i}, z_{i,<c})``.

        Args:
            z: (batch, C, H', W) model-space images; any ``H' <= H`` rows (outputs at row ``i``
               depend on rows ``<= i`` only, so sampling may pass the rows done so far).
        Returns:
            (batch, C, H', W, n_params).
        """
        b, c, h, w = z.shape
        feats = input_features(self.spec, z, self.config.output)
        if feats.ndim == 5:  # one-hot: (b, c, h, w, L) -> (b, c * L, h, w)
            feats = feats.permute(0, 1, 4, 2, 3).reshape(b, -1, h, w)
        out = self.net(feats)
        if c > 1:
            w_masked = self.channel_map.weight * self.channel_mask.to(self.channel_map.weight.dtype)
            out = out + nn.functional.conv2d(self._scalar(z), w_masked)
        return out.view(b, c, self.n_params, h, w).permute(0, 1, 3, 4, 2)

    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        return self.head.log_prob(z, self.conditionals(z)).flatten(1).sum(1)

    def objectives(self) -> list[Objective]:
        return [Objective("nll", list(self.parameters()), self.nll_loss)]

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """H * W * C sequential passes, each over the rows drawn so far."""
        p = next(self.parameters())
        c, h, w = self.spec.event_shape
        fill = -1.0 if self.config.output == "logistic_mixture" else 0.0
        z = torch.full((n, c, h, w), fill, dtype=p.dtype, device=p.device)
        for i in range(h):
            for j in range(w):
                for k in range(c):
                    params = self.conditionals(z[:, :, :i + 1])[:, k, i, j]
                    z[:, k, i, j] = self.head.sample(params, generator, self.config.temperature)
        return z
