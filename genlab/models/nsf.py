"""Neural spline flow (Durkan, Bekasov, Murray & Papamakarios 2019).

Layers of monotone rational-quadratic splines with linear (identity) tails outside [-B, B]
(`genlab.nn.splines`), either

* ``transform="coupling"`` (RQ-NSF (C)): ``ActNorm -> LU linear -> spline coupling``; the
  spline parameters of the second half come from an MLP of the first half; one-pass sampling.
* ``transform="autoregressive"`` (RQ-NSF (AR)): ``ActNorm -> spline autoregressive`` with a MADE
  conditioner and the order reversed between layers; sampling is sequential.

Images are flattened to (batch, D). Labels (if any) enter every conditioner as a context.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..data.spec import DataSpec
from ..nn.flows import ActNorm, LULinear
from ..nn.splines import SplineAutoregressive, SplineCoupling
from ..registry import register
from ._flow import FlowBase, FlowConfig


@dataclass
class NSFConfig(FlowConfig):
    transform: str = field(default="coupling", metadata={
        "help": "coupling (fast sampling) | autoregressive (MADE conditioner, sequential sampling)"})
    n_layers: int = field(default=6, metadata={"help": "number of spline layers"})
    hidden: int = field(default=128, metadata={"help": "hidden units of each conditioner"})
    depth: int = field(default=2, metadata={"help": "hidden layers of each conditioner (>= 1)"})
    bins: int = field(default=8, metadata={"help": "K, rational-quadratic segments per spline"})
    tail_bound: float = field(default=3.0, metadata={
        "help": "B: splines act on [-B, B] (model space is standardized), identity outside"})


@register("nsf")
class NSF(FlowBase):
    """Neural spline flow; exact ``log p(x)``; fast sampling for couplings, slow if autoregressive."""

    Config = NSFConfig
    sampling = "fast (coupling) | slow (autoregressive)"
    default_epochs = 300
    default_train = {"lr_schedule": "cosine", "patience": 30}

    def __init__(self, spec: DataSpec, config: NSFConfig):
        super().__init__(spec, config)
        if config.transform not in ("coupling", "autoregressive"):
            raise ValueError(f"nsf.transform must be 'coupling' or 'autoregressive', got {config.transform!r}")
        if config.n_layers < 1 or config.hidden < 1 or config.depth < 1 or config.bins < 2 or config.tail_bound <= 0:
            raise ValueError("nsf: n_layers, hidden and depth must be >= 1, bins >= 2, tail_bound > 0")
        self.sampling = "fast" if config.transform == "coupling" else "slow"  # D passes per layer
        d = spec.dim
        if config.transform == "coupling" and d < 2:
            raise ValueError("nsf: coupling layers need at least 2 values per example; "
                             "use transform=autoregressive for 1-D data")
        layers = []
        for k in range(config.n_layers):
            if config.transform == "coupling":
                layers += [ActNorm(d), LULinear(d),
                           SplineCoupling(d, False, config.hidden, config.depth, self.ctx_dim,
                                          config.bins, config.tail_bound)]
            else:
                order = range(d) if k % 2 == 0 else range(d - 1, -1, -1)
                layers += [ActNorm(d), SplineAutoregressive(d, config.hidden, config.depth, order, self.ctx_dim,
                                                            config.bins, config.tail_bound)]
        self.layers = nn.ModuleList(layers)
