"""Tasks (genlab/tasks): generative classification, outliers, imputation, interpolation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone

import genlab
from genlab.protocol import NotSupported
from genlab.tasks import GenerativeClassifier


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([3, 7], n // 2)                      # labels need not be 0..K-1
    X = rng.normal(size=(n, 2)) * 0.3 + np.where(y[:, None] == 3, -2.0, 2.0)
    return X, y


def test_classifier_separable_classes_and_proba():
    X, y = _blobs()
    clf = GenerativeClassifier("gaussian").fit(X, y)
    assert clf.score(X, y) == 1.0
    p = clf.predict_proba(X)
    assert p.shape == (len(X), 2)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)
    assert set(clf.predict(X)) == {3, 7}


def test_classifier_bayes_rule_matches_class_densities_and_priors():
    X, y = _blobs()
    clf = GenerativeClassifier("gaussian", priors=[0.2, 0.8]).fit(X, y)
    ll = clf.class_log_likelihood(X[:5])
    joint = ll + np.log([0.2, 0.8])
    expect = np.exp(joint - np.logaddexp(joint[:, :1], joint[:, 1:]))
    np.testing.assert_allclose(clf.predict_proba(X[:5]), expect, rtol=1e-6)
    # a per-class model is the family fitted on that class alone
    est = genlab.Estimator("gaussian").fit(X[y == 3])
    np.testing.assert_allclose(ll[:, 0], est.score_samples(X[:5]), rtol=1e-5)


def test_classifier_conditional_family_uses_one_model():
    X, y = _blobs(seed=1)
    clf = GenerativeClassifier("realnvp", n_layers=2, hidden=16, epochs=40, seed=0).fit(X, y)
    assert clf.conditional_ and len(clf.models_) == 1
    assert clf.score(X, y) > 0.95


def test_classifier_clone_and_params():
    clf = GenerativeClassifier("gmm", n_components=2, priors="uniform")
    c2 = clone(clf)
    assert c2.get_params() == clf.get_params()
    c2.set_params(n_components=3)
    assert c2.n_components == 3 and clf.n_components == 2


def test_classifier_not_supported_without_likelihood():
    X, y = _blobs()
    with pytest.raises(NotSupported, match="likelihood"):
        GenerativeClassifier("gan").fit(X, y)
    with pytest.raises(NotSupported, match="not Conditional"):
        GenerativeClassifier("gaussian", conditional=True).fit(X, y)
    with pytest.raises(ValueError, match="priors"):
        GenerativeClassifier("gaussian", priors=[0.5, 0.6]).fit(X, y)


# -- outliers -------------------------------------------------------------------------------------
from genlab.tasks import outliers as O  # noqa: E402


def _gaussian_model(X):
    return genlab.Estimator("gaussian", val_fraction=0.0).fit(X).model_


def test_typicality_flags_the_mode_that_the_likelihood_calls_typical():
    """In D = 50 a standard normal's mode (the origin) has the highest density, yet no sample is
    near it: the raw likelihood calls it the most normal point, the typicality test an outlier."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4000, 50, generator=g, dtype=torch.float64)
    model = _gaussian_model(X.numpy())
    held = torch.randn(1000, 50, generator=g, dtype=torch.float64)
    nll_h = O.nll_scores(model, held)
    nll_0 = O.nll_scores(model, torch.zeros(1, 50))
    assert nll_0 < nll_h.min()                                  # likelihood: "most normal"
    typ_h = O.typicality_scores(nll_h, nll_h)
    assert O.typicality_scores(nll_0, nll_h) > O.threshold_at_fpr(typ_h, 0.01)
    # H estimates the entropy of N(0, I_50): D/2 log(2 pi e)
    assert abs(float(nll_h.mean()) - 25 * math.log(2 * math.pi * math.e)) < 0.5


def test_likelihood_ratio_matches_closed_form():
    """Model N(0, I), background N(0, 9 I) in 2-D: the ratio score is
    |x|^2 / 2 (1 - 1/9) - D log 3."""
    g = torch.Generator().manual_seed(1)
    model = _gaussian_model(torch.randn(20000, 2, generator=g, dtype=torch.float64).numpy())
    bg = _gaussian_model(3 * torch.randn(20000, 2, generator=g, dtype=torch.float64).numpy())
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [4.0, -3.0]])
    s = O.likelihood_ratio_scores(O.nll_scores(model, x), O.nll_scores(bg, x))
    expect = (x.double() ** 2).sum(1) / 2 * (1 - 1 / 9) - 2 * math.log(3)
    torch.testing.assert_close(s, expect, atol=0.1, rtol=0.03)


def test_complexity_threshold_and_metrics():
    g = torch.Generator().manual_seed(2)
    flat = torch.full((4, 1, 8, 8), 3.0)
    noisy = torch.randint(0, 17, (4, 1, 8, 8), generator=g).float()
    for c in O.COMPRESSORS:
        assert (O.compressed_bits(flat, 17, c) < O.compressed_bits(noisy, 17, c)).all()
    # the correction subtracts L(x)/D bits per dimension from -log2 p(x)/D
    nll = torch.full((4,), 64 * math.log(2) * 5.0, dtype=torch.float64)   # 5 bits/dim
    torch.testing.assert_close(O.complexity_scores(nll, noisy, 64, 17, "zlib"),
                               5.0 - O.compressed_bits(noisy, 17, "zlib") / 64)
    s = torch.arange(1000, dtype=torch.float64)
    assert float((s > O.threshold_at_fpr(s, 0.05)).double().mean()) == pytest.approx(0.05, abs=0.002)
    m = O.detection_metrics(torch.zeros(5), torch.ones(5))
    assert m == {"auroc": 1.0, "aupr": 1.0}
    assert O.detection_metrics(torch.ones(5), torch.zeros(5))["auroc"] == 0.0
    p = O.perturb(torch.zeros(2000), 0.5, 4, torch.Generator().manual_seed(0))
    assert abs(float((p != 0).double().mean()) - 0.5 * 3 / 4) < 0.04


def test_outliers_not_supported_without_density_or_energy():
    from genlab.runs import build_model
    from genlab.data import load_dataset
    model = build_model("gan", load_dataset("moons", n=64).spec, {"hidden": 8, "latent_dim": 2}, 0)
    with pytest.raises(NotSupported, match="cannot score outliers"):
        O.nll_scores(model, torch.zeros(3, 2))
