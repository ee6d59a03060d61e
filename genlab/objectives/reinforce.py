"""REINFORCE (score-function) gradients with control variates (Williams 1992; Mnih & Gregor 2014).

For ``z ~ q_phi(z)`` and a learning signal ``f(z)`` that does not depend on ``phi`` through ``z``,
``d/dphi E_q[f(z)] = E_q[(f(z) - b) d/dphi log q_phi(z)]`` for any baseline ``b`` that does not
depend on ``z`` (the control variate leaves the mean unchanged and, when ``b ~ E[f]``, lowers the
variance). `reinforce_surrogate` turns this into a loss term for autograd; the baselines are
small modules a model owns, so their state is saved with it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn import MLP


def reinforce_surrogate(log_q: Tensor, signal: Tensor, baseline: Tensor | float = 0.0) -> Tensor:
    """A term whose value is 0 and whose gradient is the score-function estimator.

    ``(signal - baseline).detach() * (log_q - log_q.detach())``: adding it to an objective that
    already differentiates ``signal`` with the samples held fixed gives the unbiased gradient of
    ``E_q[signal]`` with respect to the parameters of ``q`` (Williams 1992, Eq. 11). The value is
    exactly 0, so a logged loss stays the bound itself.

    Args:
        log_q: (batch,) ``log q(z|x)`` of the (detached) samples, differentiable in ``q``'s parameters.
        signal: (batch,) learning signal ``f(z)`` per example.
        baseline: (batch,) or scalar control variate ``b`` (must not depend on the samples).
    Returns:
        (batch,) surrogate terms, to be *maximised* along with the objective.
    """
    if log_q.shape != signal.shape:
        raise ValueError(f"reinforce_surrogate: log_q {tuple(log_q.shape)} and signal "
                         f"{tuple(signal.shape)} must have the same shape")
    advantage = (signal - baseline).detach()
    return advantage * (log_q - log_q.detach())


class MovingAverageBaseline(nn.Module):
    """``b = `` an exponential moving average of the batch-mean learning signal (a constant
    control variate; Williams 1992). The first batch sets it; ``update`` comes *after* the
    batch's gradient term, so ``b`` never depends on the samples it centres.

    Args:
        decay: weight of the old average, in [0, 1).
    """

    def __init__(self, decay: float = 0.9):
        super().__init__()
        if not 0 <= decay < 1:
            raise ValueError(f"baseline decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.register_buffer("value", torch.zeros(()))
        self.register_buffer("count", torch.zeros(()))

    def forward(self, signal: Tensor, h: Tensor | None = None) -> Tensor:
        """The baseline for each example: (batch,) (constant across the batch)."""
        return self.value.to(signal.dtype).expand_as(signal)

    @torch.no_grad()
    def update(self, signal: Tensor) -> None:
        m = signal.detach().mean().to(self.value.dtype)
        self.value.copy_(m if self.count == 0 else self.decay * self.value + (1 - self.decay) * m)
        self.count += 1

    def loss(self, signal: Tensor, h: Tensor | None = None) -> Tensor:
        return signal.new_zeros(())


class LearnedBaseline(MovingAverageBaseline):
    """NVIL's input-dependent baseline (Mnih & Gregor 2014, Sec. 3.3): ``b(x) = c + net(x)``, with
    ``c`` the moving average above and ``net`` a small MLP trained by least squares to predict the
    centred signal ``f - c`` (its regression target). ``net``'s last layer starts at zero, so the
    baseline starts as the moving average.

    Args:
        in_dim: features of the (flattened) input ``h``.
        hidden: width of the MLP's two hidden layers.
        decay: decay of the moving-average part.
    """

    def __init__(self, in_dim: int, hidden: int = 64, decay: float = 0.9):
        super().__init__(decay)
        self.net = MLP(in_dim, 1, (hidden, hidden), zero_last=True)

    def forward(self, signal: Tensor, h: Tensor | None = None) -> Tensor:
        if h is None:
            raise ValueError("LearnedBaseline needs the inputs h: (batch, in_dim)")
        return super().forward(signal) + self.net(h.flatten(1).detach()).squeeze(-1)

    def loss(self, signal: Tensor, h: Tensor | None = None) -> Tensor:
        """Mean squared error of ``b(x)`` against the (detached) signal: the net's regression loss."""
        return (self.forward(signal, h) - signal.detach()).pow(2).mean()


def make_baseline(kind: str, in_dim: int, hidden: int = 64, decay: float = 0.9) -> MovingAverageBaseline | None:
    """``none`` -> None, ``moving_average`` -> `MovingAverageBaseline`, ``learned`` -> `LearnedBaseline`."""
    if kind == "none":
        return None
    if kind == "moving_average":
        return MovingAverageBaseline(decay)
    if kind == "learned":
        return LearnedBaseline(in_dim, hidden, decay)
    raise ValueError(f"baseline must be none, moving_average or learned, got {kind!r}")
