"""Neural spline flow (Durkan, Bekasov, Murray & Papamakarios 2019).

Layers of monotone rational-quadratic splines with linear (identity) tails outside [-B, B]
(`genlab.nn.splines`), either

* ``transform="coupling"`` (RQ-NSF (C)): ``ActNorm -> LU linear -> spline coupling``; the
  spline parameters of the second half come from an MLP of the first half; one-pass sampling.
  Each LU layer starts as a random permutation (``lu_init="permutation"``, as normflows'
  ``LULinearPermute``), not a random rotation: the splines act elementwise, and in
  the data's own coordinates (pixels) the marginals are far from Gaussian (dequantized levels,
  near-constant border pixels), which a spline can fit; a random rotation mixes all D values
  into near-Gaussian sums first, hiding that structure from the splines (bench/README.md).
* ``transform="autoregressive"`` (RQ-NSF (AR)): ``ActNorm -> spline autoregressive`` with a MADE
  conditioner and the order reversed between layers; sampling is sequential.

Images are flattened to (batch, D). With ``conditional=True``, labels enter every conditioner as a context.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..data.spec import DataSpec
from ..nn.flows import ActNorm, LULinear
from ..nn.splines import SplineAutoregressive, SplineCoupling
from ..protocol import register
from ._flow import FlowBase, FlowConfig


@dataclass
class NSFConfig(FlowConfig):
    transform: Literal["coupling", "autoregressive"] = field(default="coupling", metadata={
        "help": "coupling (fast sampling) | autoregressive (MADE conditioner, sequential sampling)"})
    n_layers: int = field(default=6, metadata={"max": 1_000, "help": "number of spline layers"})
    hidden: int = field(default=128, metadata={"help": "hidden units of each conditioner"})
    depth: int = field(default=2, metadata={"max": 100, "help": "hidden layers of each conditioner (>= 1)"})
    bins: int = field(default=8, metadata={"help": "K, rational-quadratic segments per spline"})
    tail_bound: float = field(default=3.0, metadata={
        "help": "B: splines act on [-B, B] (model space is standardized), identity outside"})
    lu_init: Literal["permutation", "rotation"] = field(default="permutation", metadata={
        "help": "coupling: each LU linear layer starts as a random permutation (the splines see the data's "
                "own coordinates; much better on images) | rotation (a random orthogonal matrix, as Glow)"})


def permutation_init(lu: LULinear) -> LULinear:
    """Re-start ``lu`` as ``W = P``, a random permutation (``L = U = I``; torch's global generator,
    seeded by the caller, as `LULinear`'s own rotation). ``lu`` stays a learnable LU layer."""
    d = lu.log_s.numel()
    with torch.no_grad():
        lu.perm.copy_(torch.eye(d, dtype=lu.perm.dtype)[torch.randperm(d)])
        lu.sign_s.fill_(1)
        lu.lower.zero_()
        lu.upper.zero_()
        lu.log_s.zero_()
    return lu


@register("nsf")
class NSF(FlowBase):
    """Neural spline flow; exact ``log p(x)``; fast sampling for couplings, slow if autoregressive."""
    in_default_compare = True  # stands for its row in `genlab compare`'s default set
    taxonomy = "flow"
    compare_minutes = 1.5  # its 80 default epochs (480 steps) on digits, so the cosine schedule ends

    Config = NSFConfig
    sampling = "fast (coupling) | slow (autoregressive)"
    # digits: 480 steps of 256, about a minute on one thread, so the cosine decay completes inside
    # the compare job's budget; 2-D toys of 20,000 points: ~5,000 steps (bench/README.md)
    default_epochs = 80
    # no gradient clipping (the trainer's default clips at norm 10): the NLL gradients of whole
    # images start far above that norm, so clipping would act on every early step and reweight
    # Adam's steps, which bound each step anyway (figures: bench/README.md).
    default_train = {"lr_schedule": "cosine", "patience": 30, "grad_clip": None}

    def __init__(self, spec: DataSpec, config: NSFConfig):
        super().__init__(spec, config)
        if config.n_layers < 1 or config.hidden < 1 or config.depth < 1 or config.bins < 2 or config.tail_bound <= 0:
            raise ValueError("nsf: n_layers, hidden and depth must be >= 1, bins >= 2, tail_bound > 0")
        d = spec.dim
        if config.transform == "coupling" and d < 2:
            raise ValueError("nsf: coupling layers need at least 2 values per example; "
                             "use transform=autoregressive for 1-D data")
        layers = []
        for k in range(config.n_layers):
            if config.transform == "coupling":
                lu = LULinear(d) if config.lu_init == "rotation" else permutation_init(LULinear(d))
                layers += [ActNorm(d), lu,
                           SplineCoupling(d, False, config.hidden, config.depth, self.ctx_dim,
                                          config.bins, config.tail_bound)]
            else:
                order = range(d) if k % 2 == 0 else range(d - 1, -1, -1)
                layers += [ActNorm(d), SplineAutoregressive(d, config.hidden, config.depth, order, self.ctx_dim,
                                                            config.bins, config.tail_bound)]
        self.layers = nn.ModuleList(layers)
