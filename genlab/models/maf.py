"""Masked autoregressive flow (Papamakarios, Pavlakou & Murray 2017).

Each layer is an affine autoregressive map ``u_i = (x_i - mu_i(x_{<i})) * exp(-alpha_i(x_{<i}))``
with ``(mu, alpha)`` from one MADE pass (Germain et al. 2015), so the density costs one pass per
layer; sampling inverts dimension by dimension (D passes per layer, ``sampling = "slow"``). The
order is reversed between layers (Sec. 3.1) and an ActNorm (in place of the paper's batch
normalisation, so that a score never depends on the rest of the batch) comes before each layer.
Images are flattened to (batch, D) in raster order. With ``conditional=True``, labels enter every MADE as a context.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..data.spec import DataSpec
from ..nn.flows import ActNorm, MaskedAffineAutoregressive
from ..protocol import register
from ._flow import FlowBase, FlowConfig


@dataclass
class MAFConfig(FlowConfig):
    n_layers: int = field(default=5, metadata={"max": 1_000, "help": "number of MADE affine layers (order reversed between them)"})
    hidden: int = field(default=128, metadata={"help": "hidden units per MADE layer"})
    depth: int = field(default=2, metadata={"max": 100, "help": "hidden layers per MADE (>= 1)"})
    scale_bound: float = field(default=3.0, metadata={"help": "log-scales are bound * tanh(raw / bound)"})


@register("maf")
class MAF(FlowBase):
    """MAF; exact ``log p(x)`` in one pass per layer, sequential sampling."""
    taxonomy = "flow"


    Config = MAFConfig
    sampling = "slow"
    default_epochs = 300
    default_train = {"lr_schedule": "cosine", "patience": 30}

    def __init__(self, spec: DataSpec, config: MAFConfig):
        super().__init__(spec, config)
        if config.n_layers < 1 or config.hidden < 1 or config.depth < 1 or config.scale_bound <= 0:
            raise ValueError("maf: n_layers, hidden and depth must be >= 1, scale_bound > 0")
        d = spec.dim
        layers = []
        for k in range(config.n_layers):
            order = range(d) if k % 2 == 0 else range(d - 1, -1, -1)
            layers += [ActNorm(d), MaskedAffineAutoregressive(d, config.hidden, config.depth, order,
                                                              self.ctx_dim, config.scale_bound)]
        self.layers = nn.ModuleList(layers)
