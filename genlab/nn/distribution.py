"""The ``torch.distributions.Distribution`` face of a genlab model: ``event_shape``, ``batch_shape``,
``has_rsample`` and ``rsample``, beside the model's own ``log_prob`` and ``sample``
(`genlab.protocol.GenerativeModel`, which inherits this mixin).

Where it differs from ``Distribution``: ``sample(n)`` takes a count of examples, not a
``sample_shape``, and a model is one distribution (``batch_shape == ()``) over examples of
``event_shape``, so ``log_prob(x)`` of ``x: (n, *event_shape)`` is ``(n,)``. ``rsample`` exists where
it is honest: a bijection of a N(0, I) base space (a flow) on continuous data, where a draw is a
differentiable function of the parameters; dequantized discrete data are rounded, so no gradient.
"""
from __future__ import annotations

import torch
from torch import Tensor


class DistributionFace:
    """Mixin: ``torch.distributions``-style properties of a model with ``spec``, ``pre`` and
    ``_sample`` (`genlab.protocol.GenerativeModel`)."""

    @property
    def event_shape(self) -> torch.Size:
        """Shape of one example (``spec.event_shape``)."""
        return torch.Size(self.spec.event_shape)

    @property
    def batch_shape(self) -> torch.Size:
        """``()``: a model is one distribution over examples."""
        return torch.Size()

    @property
    def has_rsample(self) -> bool:
        """Whether ``rsample`` is reparameterized: a bijection of its N(0, I) base space (it has
        ``forward_and_log_det``) on continuous data (no rounding back to levels)."""
        return hasattr(self, "forward_and_log_det") and not self.spec.is_discrete

    def rsample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """``n`` examples in data space, (n, *event_shape), differentiable with respect to the
        model's parameters (the reparameterization ``x = f^{-1}(u)``, ``u ~ N(0, I)``).

        Raises:
            NotImplementedError: the model's draws are not a differentiable function of its
                parameters (see ``has_rsample``).
        """
        if not self.has_rsample:
            raise NotImplementedError(f"{self.name}: rsample needs a flow on continuous data (has_rsample is "
                                      "False: draws are rounded to levels or not reparameterizable); use sample")
        if n < 1:
            raise ValueError(f"rsample: n must be >= 1, got {n}")
        condition = self._check_condition(condition, n)
        with torch.enable_grad():
            return self.pre.inverse(self._sample(n, condition=condition, generator=generator))
