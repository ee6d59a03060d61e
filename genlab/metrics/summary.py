"""What an evaluation records beside its figures: a model's size and capabilities, and the
result made strict JSON (pure functions of a model or of a result)."""
from __future__ import annotations

import math
from typing import Any

from ..protocol import Conditional, Decoder, Energy, GenerativeModel, Latent


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN / Inf floats replaced by None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def parameters(model: GenerativeModel) -> int:
    """Numbers a fitted model stores: trainable parameters and floating-point buffers (a GMM's
    means, a KDE's points)."""
    return sum(t.numel() for t in model.state_dict().values() if t.is_floating_point())


def capabilities(model: GenerativeModel) -> list[str]:
    """The capabilities ``model`` declares, by name (decoder, latent, energy, conditional)."""
    caps = (("decoder", Decoder), ("latent", Latent), ("energy", Energy), ("conditional", Conditional))
    return [n for n, c in caps if isinstance(model, c)]
