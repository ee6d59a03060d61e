"""The optimizer of one objective and the learning-rate schedule, as the trainer uses them."""
from __future__ import annotations

import math

import torch

from ..protocol import Objective
from .config import TrainConfig


def make(obj: Objective, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer | None:
    """Adam (AdamW with weight decay) over ``obj``'s parameters at its own lr and betas when it
    sets them; None for an objective without parameters (a closed-form fit)."""
    if not obj.parameters:
        return None
    cls = torch.optim.AdamW if config.weight_decay else torch.optim.Adam
    kw = {"weight_decay": config.weight_decay} if config.weight_decay else {}
    if device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in obj.parameters):
        kw["fused"] = True  # one kernel for all tensors, not ~10 ops per tensor (bench/README.md)
    opt = cls(obj.parameters, lr=obj.lr or config.lr, betas=obj.betas or (0.9, 0.999), **kw)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    return opt


def lr_factor(schedule: str, step: int, total_steps: int | None) -> float:
    """The factor on every objective's initial lr at ``step``: 1 for a constant schedule, a
    cosine from 1 to 0 over ``total_steps`` for ``cosine``."""
    if schedule == "constant" or not total_steps:
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
