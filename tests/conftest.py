"""Shared fixtures: tiny data and the tiny configuration of every family (the conformance list).

A new family joins the conformance suite by adding one entry to FAMILY_CONFIGS.
"""
from __future__ import annotations

import pytest
import torch

import genlab
from genlab.data import load_dataset
from genlab.runs import build_model
from genlab.train import TrainConfig, Trainer

torch.set_num_threads(2)

# tiny settings that train in a fraction of a second
FAMILY_CONFIGS: dict[str, dict] = {
    "gaussian": {},
    "gmm": {"n_components": 3},
    "kde": {"n_candidates": 8},
    "vae": {"hidden": 32, "latent_dim": 2},
    "realnvp": {"n_layers": 2, "hidden": 16},
    "gan": {"hidden": 32, "latent_dim": 4},
}


@pytest.fixture(scope="session")
def moons():
    return load_dataset("moons", n=384, seed=0)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits", n=192)


@pytest.fixture(scope="session")
def datasets(moons, digits):
    return {"moons": moons, "digits": digits}


def tiny_model(family: str, spec, seed: int = 0, **overrides):
    """The family's tiny model for ``spec``; a family that refuses this kind of data (raising
    `NotSupported` at construction, with its reason) skips the test instead of failing it."""
    try:
        return build_model(family, spec, {**FAMILY_CONFIGS[family], **overrides}, seed)
    except genlab.NotSupported as e:
        pytest.skip(f"{family} does not support {spec.kind.value} {spec.event_shape}: {e}")


def fit_tiny(family: str, ds, *, seed: int = 0, epochs: int = 2, out=None, callbacks=None, **train_kw):
    model = tiny_model(family, ds.spec, seed)
    n_val = max(2, len(ds) // 8)
    cfg = TrainConfig(epochs=epochs, batch_size=64, seed=seed, progress=False, device="cpu", **train_kw)
    tr = Trainer(model, cfg, out=out, callbacks=callbacks)
    tr.fit(ds.x[n_val:], ds.y[n_val:] if ds.y is not None else None, ds.x[:n_val])
    return model, tr
