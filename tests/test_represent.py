"""Representation learning through the scikit-learn face: ``Estimator.transform`` gives latent codes
for every `Latent` family, deterministically, and the Estimator works as a Pipeline step."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import genlab
from genlab import Latent, NotSupported
from genlab.protocol import Bijective
from genlab.registry import get_family

from conftest import FAMILY_CONFIGS

LATENT = sorted(f for f in FAMILY_CONFIGS if issubclass(get_family(f), Latent) and f != "gan")
FLOWS = [f for f in FAMILY_CONFIGS if issubclass(get_family(f), Bijective)]  # decode(encode(x)) == x
FAST = {"timesteps": 8, "sample_steps": 4}  # ddpm: DDIM encoding in 4 steps keeps the test fast


def _estimator(family: str, seed: int = 0) -> genlab.Estimator:
    cfg = {**FAMILY_CONFIGS[family], **(FAST if family == "ddpm" else {})}
    return genlab.Estimator(family, epochs=1, batch_size=64, seed=seed, val_fraction=0, **cfg)


@pytest.fixture(scope="module")
def data(moons, digits):
    return {"moons": moons.x.numpy(), "digits": digits.x.numpy()}


@pytest.fixture(scope="module")
def fitted(data):
    """``fitted(family, data_name)``: an Estimator fitted for 1 epoch on moons or digits (cached)."""
    cache = {}

    def get(family: str, data_name: str) -> genlab.Estimator:
        if (family, data_name) not in cache:
            try:
                cache[family, data_name] = _estimator(family).fit(data[data_name])
            except NotSupported as e:  # a family that refuses this kind of data says why
                cache[family, data_name] = e
        if isinstance(cache[family, data_name], NotSupported):
            pytest.skip(f"{family} on {data_name}: {cache[family, data_name]}")
        return cache[family, data_name]
    return get


@pytest.mark.parametrize("data_name", ["moons", "digits"])
@pytest.mark.parametrize("family", LATENT)
def test_transform_gives_deterministic_codes_of_the_latent_size(family, data_name, data, fitted):
    X = data[data_name]
    est = fitted(family, data_name)
    z = est.transform(X)
    assert z.shape == (len(X), est.model_.latent_dim) and z.dtype == np.float32
    assert np.isfinite(z).all()
    np.testing.assert_array_equal(z, est.transform(X))  # no sampling: posterior means, fixed noise
    assert np.ptp(z, axis=0).max() > 0  # codes differ between examples
    if data_name == "moons":  # continuous data: no dequantization, so a row's code is its own
        np.testing.assert_allclose(est.transform(X[5:12]), z[5:12], rtol=1e-4, atol=1e-5)


def test_vae_codes_are_the_posterior_means(data, fitted):
    X = data["moons"]
    est = fitted("vae", "moons")
    m = est.model_
    mu, _ = m.posterior(m.pre(m.check_input(X[:9]))[0])
    np.testing.assert_allclose(est.transform(X[:9]), mu.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_rbm_codes_are_hidden_probabilities(data, fitted):
    X = data["moons"]
    est = fitted("rbm", "moons")
    m = est.model_
    v = ((torch.as_tensor(X[:9], dtype=torch.float64) - m.pre.mean.double()) / m.pre.std.double())
    expected = torch.sigmoid(v @ m.W.double() + m.c.double())  # P(h = 1 | v), in float64
    z = est.transform(X[:9])
    np.testing.assert_allclose(z, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert z.min() >= 0 and z.max() <= 1
    assert est.inverse_transform(z).shape == X[:9].shape


@pytest.mark.parametrize("family", [f for f in FLOWS if f in LATENT])
def test_flow_codes_decode_back_to_the_data(family, data, fitted):
    X = data["moons"]
    est = fitted(family, "moons")
    np.testing.assert_allclose(est.inverse_transform(est.transform(X[:16])), X[:16], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("family", ["gaussian", "made", "gan"])
def test_families_without_an_encoder_refuse_with_the_reason(family, data, fitted):
    est = fitted(family, "moons")
    match = "encoder" if family == "gan" else "no latent space"
    with pytest.raises(NotSupported, match=match):
        est.transform(data["moons"][:4])
    with pytest.raises(NotSupported, match=match):
        clone(est).fit_transform(data["moons"][:64])


@pytest.mark.parametrize("family", ["ae", "rbm", "realnvp"])
def test_fit_transform_equals_fit_then_transform(family, data, fitted):
    X = data["digits"]
    est = fitted(family, "digits")  # fitted with fit(X), seed 0
    np.testing.assert_array_equal(clone(est).fit_transform(X), est.transform(X))


def test_transform_before_fit_is_refused():
    with pytest.raises(AttributeError, match="not fitted"):
        genlab.Estimator("ae").transform(np.zeros((2, 2)))


def test_pipeline_of_codes_and_a_linear_probe_learns_the_labels(digits):
    X, y = digits.x.numpy().reshape(len(digits), -1), digits.y.numpy()
    pipe = Pipeline([("codes", genlab.Estimator("ae", epochs=5, batch_size=16, seed=0, hidden=32, latent_dim=8)),
                     ("probe", LogisticRegression(max_iter=2000))])
    pipe.fit(X[:150], y[:150])
    assert pipe.predict(X[150:]).shape == (len(X) - 150,)
    assert pipe.score(X[:150], y[:150]) > 0.5  # 10 classes: chance is 0.1
    refit = clone(pipe).fit(X[:150], y[:150])  # clone keeps every setting, and fitting is seeded
    np.testing.assert_array_equal(refit.predict(X[150:]), pipe.predict(X[150:]))


def test_a_pipeline_passes_labels_to_a_conditional_family_and_codes_need_none(digits):
    X, y = digits.x.numpy(), digits.y.numpy()
    pipe = Pipeline([("codes", _estimator("vae")), ("probe", LogisticRegression(max_iter=500))]).fit(X, y)
    assert pipe[0].model_.n_labels == 10  # fit_transform(X, y) trained a label-conditional VAE
    assert pipe.predict_proba(X[:5]).shape == (5, 10)  # transform encodes with the "no label" input
