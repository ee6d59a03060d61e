"""An exponential moving average of a model's weights (Polyak averaging), for validation and
the saved model: ``ema <- decay * ema + (1 - decay) * weights`` after every step."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn


class EMA:
    """The running average of ``model``'s state (float tensors averaged, others copied).

    Args:
        model: the module whose ``state_dict`` is averaged.
        decay: weight of the old average per step, in (0, 1], e.g. 0.999.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay <= 1:
            raise ValueError(f"ema decay must be in (0, 1], got {decay}")
        self.model, self.decay = model, decay
        self.state: dict[str, Tensor] = {}
        self.reset()

    def reset(self) -> None:
        """Start the average at the current weights (after data-dependent initialisation)."""
        self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights into the average (once per trainer step)."""
        for k, v in self.model.state_dict().items():
            if v.is_floating_point():
                self.state[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
            else:
                self.state[k].copy_(v)

    def load(self, state: dict[str, Tensor], device: torch.device) -> None:
        """Replace the average by ``state`` (from a checkpoint)."""
        self.state = {k: v.to(device) for k, v in state.items()}

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block and its own weights again after."""
        saved = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.state)
        try:
            yield
        finally:
            self.model.load_state_dict(saved)
