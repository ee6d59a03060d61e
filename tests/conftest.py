"""Shared fixtures: tiny data and the tiny configuration of every family (the conformance list).

A new family joins the conformance suite by adding one entry to FAMILY_CONFIGS.
"""
from __future__ import annotations

import pytest
import torch

import genlab
from genlab.data import load_dataset
from genlab import make
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
    "iresnet": {"n_blocks": 2, "hidden": 16, "depth": 1, "n_terms": 3, "eval_trace_samples": 1},
    "ebm": {"hidden": 32, "depth": 2, "channels": (8, 16), "langevin_steps": 10, "buffer_size": 512, "sample_steps": 20,
            "step_size": 0.05, "noise_scale": 0.05},
    "made": {"hidden": 32, "n_orders": 2, "components": 3},
    "ddpm": {"timesteps": 20, "hidden": 32, "depth": 1, "channels": 8},
    "transformer": {"d_model": 16, "n_layers": 1, "n_heads": 2, "components": 3},
    "ae": {"hidden": 32, "latent_dim": 2},
    "wae": {"hidden": 32, "latent_dim": 2},
    "iwae": {"hidden": 32, "latent_dim": 2, "k": 3},
    "glow": {"scales": 2, "steps": 2, "hidden": 16, "depth": 1},
    "maf": {"n_layers": 2, "hidden": 16, "depth": 1},
    "nsf": {"n_layers": 2, "hidden": 16, "depth": 1, "bins": 4},
    "bayesnet": {"structure": "chow-liu"},
    "rbm": {"hidden": 8, "persistent": False, "sample_steps": 5, "ais_betas": 50, "ais_runs": 8},
    "mrf": {"sweeps": 2},
    "cgan": {"hidden": 32, "latent_dim": 4},
    "pix2pix": {"base": 8, "stored_images": 16},
    "cyclegan": {"base": 8, "stored_images": 256},
    "pixelcnn": {"channels": 8, "n_layers": 2},
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
        return make(family, spec, seed=seed, **{**FAMILY_CONFIGS[family], **overrides})
    except genlab.NotSupported as e:
        pytest.skip(f"{family} does not support {spec.kind.value} {spec.event_shape}: {e}")


def fit_tiny(family: str, ds, *, seed: int = 0, epochs: int = 2, out=None, callbacks=None, **train_kw):
    model = tiny_model(family, ds.spec, seed)
    n_val = max(2, len(ds) // 8)
    cfg = TrainConfig(epochs=epochs, batch_size=64, seed=seed, progress=False, device="cpu", **train_kw)
    tr = Trainer(model, cfg, out=out, callbacks=callbacks)
    tr.fit(ds.x[n_val:], ds.y[n_val:] if ds.y is not None else None, ds.x[:n_val])
    return model, tr
