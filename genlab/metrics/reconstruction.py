"""How well a latent model's encoder and decoder invert each other (a pure function of a model
and data)."""
from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from ..protocol import Latent


def reconstruction_rmse(model: Latent, x: Tensor) -> dict[str, Any]:
    """Root mean squared error of ``decode(encode(x))`` in data units, with its standard error
    (delta method over examples)."""
    xr = model.decode(model.encode(x)).cpu().reshape(x.shape)
    err = (xr.double() - x.double()).reshape(len(x), -1).square().mean(1)
    rmse = float(err.mean().sqrt())  # se(rmse) = se(mse) / (2 rmse)
    se = float(err.std() / math.sqrt(len(x))) / (2 * rmse) if rmse > 0 else 0.0
    return {"value": rmse, "stderr": se, "n": len(x), "units": "data units (root mean squared error per value)"}
