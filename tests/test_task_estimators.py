"""scikit-learn estimators of the tasks (genlab/estimators/tasks.py): outlier detection, imputation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from genlab.estimators import GenerativeImputer, GenerativeOutlierDetector
from genlab.tasks import outliers as O

COV = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]])
MEAN = np.array([1.0, -2.0, 0.5])


def _gauss(n, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal(MEAN + shift, COV, size=n)


# -- outlier detector --------------------------------------------------------------------------------
@pytest.mark.parametrize("score", ["nll", "typicality", "complexity", "ratio"])
def test_detector_flags_shifted_gaussian_and_keeps_fpr(score):
    cfg = {"epochs": 2, "batch_size": 128} if score == "ratio" else {}
    det = GenerativeOutlierDetector("gaussian", anomaly_score=score, fpr=0.1, **cfg).fit(_gauss(2000))
    fresh = det.predict(_gauss(4000, seed=1))
    assert set(np.unique(fresh)) <= {-1, 1}
    # held-out inliers flagged at about the requested rate (binomial sd ~0.005 at n=4000, plus the
    # threshold's own error from 400 held-out examples)
    assert abs(np.mean(fresh == -1) - 0.1) < 0.04
    assert np.mean(det.heldout_scores_ > det.threshold_) <= 0.1 + 1e-9
    far = det.predict(_gauss(200, seed=2, shift=6.0))
    expect = 0.9 if score in ("nll", "typicality") else 0.5  # complexity/ratio are weaker corrections
    assert np.mean(far == -1) > expect


def test_detector_batch_test_calibrated_and_sees_what_single_examples_cannot():
    """Batches from the training distribution are flagged at about ``fpr``; a batch from the
    shrunken distribution N(MEAN, COV / 10) (each point denser than typical, so no per-example NLL
    threshold flags it) is flagged by the batch typicality test."""
    det = GenerativeOutlierDetector("gaussian", anomaly_score="nll", fpr=0.1).fit(_gauss(3000))
    flags = [det.batch_test(_gauss(20, seed=10 + i))["outlier"] for i in range(40)]
    assert np.mean(flags) < 0.25  # binomial(40, 0.1): sd 0.047
    rng = np.random.default_rng(99)
    tight = rng.multivariate_normal(MEAN, COV / 10, size=20)
    res = det.batch_test(tight)
    assert res["outlier"] and res["p_value"] < 0.01 and res["m"] == 20 and res["statistic"] > res["threshold"]
    assert (det.predict(tight) == 1).all()  # per example, all look like inliers
    assert det.batch_test(_gauss(20, seed=3))["p_value"] > 0.01
    with pytest.raises(ValueError, match="n_boot >= 100"):
        det.batch_test(tight, n_boot=10)


def test_detector_sklearn_conventions():
    X = _gauss(600)
    det = GenerativeOutlierDetector("gaussian", anomaly_score="nll", fpr=0.05).fit(X)
    s = det.score_samples(X[:50])
    # score_samples is the log-likelihood (higher = more normal); decision_function shifts it
    np.testing.assert_allclose(s, det.model_.score_samples(X[:50]), rtol=1e-6)
    np.testing.assert_allclose(det.decision_function(X[:50]), s + det.threshold_)
    np.testing.assert_array_equal(det.predict(X[:50]), np.where(s < -det.threshold_, -1, 1))
    assert det.fit_predict(X).shape == (600,)


def test_detector_typicality_entropy_is_heldout_mean_nll():
    X = _gauss(500)
    det = GenerativeOutlierDetector("gaussian", anomaly_score="typicality", holdout=0.3, seed=3).fit(X)
    held = X[np.random.default_rng(3).permutation(500)[:150]]
    assert det.entropy_ == pytest.approx(-det.model_.score_samples(held).mean(), rel=1e-6)
    # the closed-form entropy of the Gaussian, 0.5 log det(2 pi e S)
    assert det.entropy_ == pytest.approx(0.5 * math.log(np.linalg.det(2 * math.pi * math.e * COV)), abs=0.25)


def test_detector_clone_pipeline_and_params():
    det = GenerativeOutlierDetector("gmm", anomaly_score="nll", n_components=2, fpr=0.1)
    c = clone(det)
    assert c.get_params() == det.get_params() and c.get_params()["n_components"] == 2
    c.set_params(n_components=3, fpr=0.2)
    assert det.get_params()["n_components"] == 2 and c.get_params()["n_components"] == 3
    pipe = make_pipeline(StandardScaler(), clone(det)).fit(_gauss(400))
    assert set(np.unique(pipe.predict(_gauss(400, seed=5, shift=5.0)))) <= {-1, 1}
    assert np.mean(pipe.predict(_gauss(100, seed=5, shift=5.0)) == -1) > 0.9
    assert pipe.score_samples(_gauss(5)).shape == (5,)


def test_detector_bad_input():
    bad = GenerativeOutlierDetector("gaussian", n_layerz=3)  # stored as given; fit validates
    with pytest.raises(ValueError, match="unknown parameter"):
        bad.fit(_gauss(100))
    with pytest.raises(ValueError, match="score must be one of"):
        GenerativeOutlierDetector("gaussian", anomaly_score="magic").fit(_gauss(100))
    with pytest.warns(UserWarning, match="20 or more"):
        GenerativeOutlierDetector("gaussian").fit(_gauss(30))
    with pytest.raises(ValueError, match="n_samples=1"):
        GenerativeOutlierDetector("gaussian").fit(_gauss(1))
    det = GenerativeOutlierDetector("gaussian", anomaly_score="nll").fit(_gauss(200))
    with pytest.raises(ValueError, match="expecting 3 features"):
        det.predict(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        GenerativeOutlierDetector("gaussian").fit(np.where(_gauss(200) > 2, np.nan, _gauss(200)))
    with pytest.raises(AttributeError, match="not fitted"):
        GenerativeOutlierDetector("gaussian").predict(_gauss(3))


# -- outlier helpers -----------------------------------------------------------------------------------
def test_byte_quantizer_units_and_batch_typicality():
    x = torch.tensor([[0.0, 10.0], [1.0, 20.0], [0.5, 15.0]], dtype=torch.float64)
    q = O.ByteQuantizer.fit(x, None)
    np.testing.assert_array_equal(q(x), [[0, 0], [255, 255], [128, 128]])
    assert q.log_bin_volume == pytest.approx(math.log(1 / 255) + math.log(10 / 255))
    assert O.ByteQuantizer.fit(torch.zeros(3, 4), 17).log_bin_volume == 0.0
    # one example's complexity score does not depend on the rest of the batch
    a = O.complexity_scores(torch.ones(3), x, 2, compressor="zlib", quantizer=q)
    b = O.complexity_scores(torch.ones(1), x[:1], 2, compressor="zlib", quantizer=q)
    assert float(a[0]) == float(b[0])
    nll = torch.tensor([1.0, 3.0, 2.0, 6.0, 5.0])
    torch.testing.assert_close(O.typicality_batch_scores(nll, torch.tensor([2.0]), 2),
                               torch.tensor([0.0, 2.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="batch size m"):
        O.typicality_batch_scores(nll, nll, 0)


# -- imputer --------------------------------------------------------------------------------------------
def _conditional_mean(x, miss):
    o, m = ~miss, miss
    return MEAN[m] + COV[np.ix_(m, o)] @ np.linalg.solve(COV[np.ix_(o, o)], x[o] - MEAN[o])


def test_imputer_fills_only_nans_with_the_exact_conditional_mean():
    X = _gauss(4000)
    Xt = _gauss(40, seed=7)
    miss = np.zeros(Xt.shape, dtype=bool)              # two patterns: one and two entries missing
    miss[:20, 0] = True
    miss[20:, 1:] = True
    Xm = np.where(miss, np.nan, Xt)
    imp = GenerativeImputer("gaussian", n_draws=100, random_state=0).fit(X)
    out = imp.transform(Xm)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[~miss], Xt[~miss])
    expect = np.array([np.r_[_conditional_mean(Xt[i], miss[i])] if miss[i].any() else [] for i in range(40)],
                      dtype=object)
    err = np.concatenate([out[i][miss[i]] - expect[i] for i in range(40) if miss[i].any()])
    # mean of 100 draws: sd <= 1/sqrt(100) = 0.1 (conditional variances <= 1), plus the error of the
    # fitted Gaussian (n=3600); the marginal mean instead of the conditional one gives RMSE ~0.6
    assert np.abs(err).max() < 0.4 and np.sqrt(np.mean(err ** 2)) < 0.1
    draws = imp.sample_draws(Xm, n_draws=7)
    assert draws.shape == (7, 40, 3)
    assert np.all(draws[:, ~miss] == Xt[~miss]) and draws[:, miss].std(0).min() > 0


def test_imputer_all_nan_rows_get_the_marginal_and_complete_rows_pass_through():
    imp = GenerativeImputer("gaussian", n_draws=100).fit(_gauss(2000))
    out = imp.transform(np.array([[np.nan] * 3, [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(out[0], MEAN, atol=0.35)  # 100 draws of N(MEAN, COV): sd 0.1
    np.testing.assert_array_equal(out[1], [1.0, 2.0, 3.0])


def test_imputer_fit_uses_complete_rows_clone_and_pipeline():
    X = _gauss(500)
    y = X @ np.array([1.0, -1.0, 2.0])
    Xm = X.copy()
    Xm[::5, 0] = np.nan
    imp = GenerativeImputer("gmm", n_components=1, n_draws=3)
    c = clone(imp)
    assert c.get_params() == imp.get_params()
    pipe = make_pipeline(c, LinearRegression()).fit(Xm, y)
    assert pipe[0].n_complete_rows_ == 400 and pipe.score(Xm, y) > 0.95


def test_imputer_statistic_keeps_binary_fills_binary():
    """On 0/1 data the default fill is the most frequent draw (a value the data can take), the
    mean is a fraction, and each statistic is that of ``sample_draws`` (same seed, same draws)."""
    rng = np.random.default_rng(0)
    x0 = rng.random(2000) < 0.5
    x1 = np.where(rng.random(2000) < 0.9, x0, ~x0)
    x2 = np.where(rng.random(2000) < 0.9, x1, ~x1)
    X = np.stack([x0, x1, x2], 1).astype(float)
    Xm = np.array([[1.0, np.nan, 1.0], [0.0, np.nan, 0.0], [np.nan, 1.0, np.nan]])
    imp = GenerativeImputer("bayesnet", n_draws=9, random_state=3).fit(X)
    draws = imp.sample_draws(Xm)
    out = imp.transform(Xm)
    assert set(np.unique(out)) <= {0.0, 1.0} and out[0, 1] == 1.0 and out[1, 1] == 0.0
    miss = np.isnan(Xm)
    for stat, f in (("mean", draws.mean(0)), ("median", np.median(draws, 0)),
                    ("mode", (draws.mean(0) > 0.5).astype(float))):  # 9 draws of 0/1: no ties
        imp.set_params(statistic=stat)
        np.testing.assert_array_equal(imp.transform(Xm)[miss], f[miss])
    imp.set_params(statistic="mean")
    assert not np.isin(imp.transform(Xm)[miss], [0.0, 1.0]).all()  # some entry's draws disagree
    with pytest.raises(ValueError, match="statistic must be one of"):
        imp.set_params(statistic="max").transform(Xm)


def test_imputer_bad_input():
    with pytest.raises(ValueError, match="complete rows"):
        GenerativeImputer("gaussian").fit(np.full((20, 3), np.nan))
    imp = GenerativeImputer("gaussian").fit(_gauss(100))
    with pytest.raises(ValueError, match="expecting 3 features"):
        imp.transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="unknown parameter"):
        GenerativeImputer("gmm", componentz=3).fit(_gauss(100))


def test_detector_default_typicality_on_discrete_images():
    from sklearn.datasets import load_digits

    X = load_digits().data.reshape(-1, 1, 8, 8)            # 17 grey levels, (n, 1, 8, 8)
    det = GenerativeOutlierDetector("gaussian").fit(X[:1400])
    assert det.anomaly_score == "typicality" and det.get_params()["anomaly_score"] == "typicality"
    assert GenerativeOutlierDetector("gaussian", score="nll").anomaly_score == "nll"  # the earlier name
    noise = np.random.default_rng(0).integers(0, 17, size=(200, 1, 8, 8))
    assert np.mean(det.predict(noise) == -1) > 0.95
    assert abs(np.mean(det.predict(X[1400:]) == -1) - 0.05) < 0.05
