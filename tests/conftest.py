"""Shared fixtures: tiny data and the tiny configuration of every family (the conformance list).

A new family joins the conformance suite by adding one entry to FAMILY_CONFIGS.
"""
from __future__ import annotations

import os

# One thread everywhere, this process and the ones it starts (CLI, torchrun, fork servers): the tiny
# models here gain nothing from a second thread, and on a loaded machine an idle OpenMP/BLAS thread
# spin-waits, which cost 10-30x the CPU time of a one-thread fit (tests that want more set it).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402  (scikit-learn's dependency)

import genlab  # noqa: E402
from genlab.data import load_dataset  # noqa: E402
from genlab import make  # noqa: E402
from genlab.train import TrainConfig, Trainer  # noqa: E402

torch.set_num_threads(1)
threadpool_limits(1)  # numpy/scipy BLAS already loaded before this file


@pytest.fixture(autouse=True)
def _one_thread():
    """A test that changes torch's thread count (or a library call that leaks one) does not leave
    the rest of the session on it."""
    yield
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


# tiny settings that train in a fraction of a second
FAMILY_CONFIGS: dict[str, dict] = {
    "gaussian": {},
    "gmm": {"n_components": 3},
    "kde": {"n_candidates": 8},
    "vae": {"hidden": 32, "latent_dim": 2},
    "realnvp": {"n_layers": 2, "hidden": 16, "conditional": True},
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
    "glow": {"scales": 2, "steps": 2, "hidden": 16, "depth": 1, "conditional": True},
    "maf": {"n_layers": 2, "hidden": 16, "depth": 1, "conditional": True},
    "nsf": {"n_layers": 2, "hidden": 16, "depth": 1, "bins": 4, "conditional": True},
    "bayesnet": {"structure": "chow-liu"},
    "rbm": {"hidden": 8, "persistent": False, "sample_steps": 5, "ais_betas": 50, "ais_runs": 8},
    "mrf": {"sample_steps": 2},
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
