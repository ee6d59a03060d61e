"""What the CLI's task commands share: a run's model and its own data splits."""
from __future__ import annotations

from pathlib import Path

from torch import Tensor

from ..data import Splits, load_dataset
from ..io import load, read_config
from ..protocol import GenerativeModel
from ..runs import load_splits


def run_model_and_splits(run_dir: str | Path) -> tuple[GenerativeModel, Splits | None]:
    """The trained model of ``run_dir`` and the splits it was trained on (None if unknown)."""
    model = load(run_dir)
    data = read_config(run_dir).get("data")
    return model, (load_splits(data) if data and data.get("name") else None)


def load_like(model: GenerativeModel, data: str, n: int | None = None) -> tuple[Tensor, Tensor | None]:
    """Examples (and labels) of the data set or file ``data``, checked against the model's spec."""
    ds = load_dataset(data, n=n, seed=0)
    if ds.spec.dim != model.spec.dim:
        raise ValueError(f"--data {data!r} holds examples of shape {tuple(ds.spec.event_shape)} but the run's "
                         f"model was trained on shape {tuple(model.spec.event_shape)}; pass matching data")
    return model.check_input(ds.x), ds.y  # also checks the values (discrete levels, finite)
