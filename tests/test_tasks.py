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
