"""The scikit-learn face."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

import genlab
from genlab import NotSupported


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(-3, 1, (150, 2)), rng.normal(3, 0.5, (150, 2))])


def test_fit_score_sample_contract(blobs):
    est = genlab.Estimator("gmm", n_components=2)
    assert est.fit(blobs) is est
    s = est.score_samples(blobs[:10])
    assert s.shape == (10,) and np.isfinite(s).all()
    assert est.score(blobs[:10]) == pytest.approx(s.mean())
    x = est.sample(20, random_state=3)
    assert x.shape == (20, 2)
    np.testing.assert_array_equal(x, est.sample(20, random_state=3))


def test_clone_and_grid_search(blobs):
    est = genlab.Estimator("gmm", n_components=1, seed=1)
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "model_")
    search = GridSearchCV(genlab.Estimator("gmm"), {"n_components": [1, 2, 4]}, cv=3).fit(blobs)
    assert search.best_params_["n_components"] >= 2


def test_digits_are_discrete_and_keep_their_shape():
    X = load_digits().data[:300]
    est = genlab.Estimator("gaussian").fit(X)
    assert est.spec_.kind.value == "discrete" and est.spec_.levels == 17
    assert est.sample(4, random_state=0).shape == (4, 64)
    # bits/dim of a full Gaussian on digits is near 3 (DESIGN: ~2.95 with the whole data set)
    assert 2 < -est.score(X) / (64 * np.log(2)) < 4


def test_latent_transform_round_trip_shapes():
    X = load_digits().data[:200]
    est = genlab.Estimator("vae", epochs=1, latent_dim=3, hidden=16).fit(X)
    z = est.transform(X[:5])
    assert z.shape == (5, 3)
    assert est.inverse_transform(z).shape == (5, 64)


def test_gan_has_no_score(blobs):
    est = genlab.Estimator("gan", epochs=1, hidden=16).fit(blobs)
    with pytest.raises(NotSupported, match="density"):
        est.score_samples(blobs[:3])
    assert est.sample(5, random_state=0).shape == (5, 2)


def test_bad_parameters_and_input():
    with pytest.raises(ValueError, match="unknown parameter"):
        genlab.Estimator("gmm", n_componentz=3)
    with pytest.raises(ValueError, match="unknown family"):
        genlab.Estimator("nope")
    with pytest.raises(ValueError, match="NaN"):
        genlab.Estimator("gaussian").fit(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]))
    with pytest.raises(AttributeError, match="not fitted"):
        genlab.Estimator("gaussian").score(np.zeros((2, 2)))


def test_labels_reach_only_models_built_to_take_them():
    """A vae built unconditional (or a flow with embed_dim=0) ignores y in fit, as a Pipeline passes it,
    while a conditional one uses it; both then score without labels."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:200], y[:200]
    plain = genlab.Estimator("vae", conditional=False, epochs=1, val_fraction=0.2).fit(X, y)
    assert not plain.model_.conditioned
    cond = genlab.Estimator("vae", conditional=True, epochs=1, val_fraction=0.2).fit(X, y)
    assert cond.model_.conditioned
    assert np.isfinite(plain.score(X)) and np.isfinite(cond.score(X))


# -- one class per family, with an explicit signature --------------------------------------------
def test_estimator_builds_the_family_class_with_an_explicit_signature():
    import inspect

    from genlab.estimators import GMM, NSF, BayesNet

    est = genlab.Estimator("gmm", n_components=5)
    assert type(est) is GMM and isinstance(est, genlab.Estimator)
    sig = inspect.signature(GMM)
    assert sig.parameters["n_components"].default == 3 or "n_components" in sig.parameters
    assert est.get_params()["n_components"] == 5 and "lr" in est.get_params()
    assert not hasattr(genlab.Estimator("gmm"), "transform")       # no latent space
    assert hasattr(genlab.Estimator("vae"), "transform")
    # a setting named like an estimator method is prefixed; its own name still reads
    assert BayesNet(score="bdeu").bayesnet_score == "bdeu" and callable(BayesNet().score)
    assert NSF(transform="autoregressive").nsf_transform == "autoregressive" and callable(NSF().transform)
    with pytest.raises(TypeError, match="unknown parameter"):
        GMM(n_componentz=2)


def test_fit_ignores_y_on_unconditional_families_and_checks_labels(blobs):
    y = np.arange(len(blobs)) % 2
    a = genlab.Estimator("gmm", n_components=2).fit(blobs, y)
    b = genlab.Estimator("gmm", n_components=2).fit(blobs)
    np.testing.assert_array_equal(a.score_samples(blobs[:5]), b.score_samples(blobs[:5]))
    flow = genlab.Estimator("maf", n_layers=1, hidden=8, depth=1, epochs=1)
    with pytest.raises(ValueError, match="n_samples=1"):
        genlab.Estimator("gmm").fit(blobs[:1])
    with pytest.raises(ValueError, match="0..K-1"):
        flow.fit(blobs, -y)
    with pytest.raises(ValueError, match=r"shape \(300,\)"):
        flow.fit(blobs, y[:10])
    with pytest.raises(ValueError, match="Complex data not supported"):
        genlab.Estimator("gaussian").fit(blobs + 1j)
    with pytest.raises(ValueError, match="Complex data"):
        genlab.estimators.infer_spec(blobs + 1j)


def test_pickle_and_joblib_round_trip(blobs, tmp_path):
    import pickle

    import joblib

    est = genlab.Estimator("gmm", n_components=2).fit(blobs)
    state = est.__getstate__()
    assert "model_" not in state and isinstance(state["_model_packed"]["tensors"], bytes)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.score_samples(blobs), est.score_samples(blobs))
    np.testing.assert_array_equal(back.sample(5, random_state=1), est.sample(5, random_state=1))
    joblib.dump(est, tmp_path / "est.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "est.joblib").score_samples(blobs[:7]),
                                  est.score_samples(blobs[:7]))
    flow = genlab.Estimator("maf", n_layers=1, hidden=8, depth=1, epochs=1, threads=1).fit(blobs)
    back = pickle.loads(pickle.dumps(flow))
    assert not hasattr(back, "trainer_") and back.spec_ == flow.spec_
    np.testing.assert_array_equal(back.score_samples(blobs[:9]), flow.score_samples(blobs[:9]))
    np.testing.assert_array_equal(back.transform(blobs[:9]), flow.transform(blobs[:9]))


@pytest.mark.slow  # two worker processes each import torch and genlab: ~20-50 s on 2 busy cores
def test_parallel_grid_search_ships_estimators_to_workers(blobs):
    """GridSearchCV(n_jobs=2) pickles the estimator to loky workers and the fitted ones back."""
    import pickle

    from sklearn.model_selection import KFold

    cv = KFold(2, shuffle=True, random_state=0)  # blobs are stored cluster by cluster
    search = GridSearchCV(genlab.Estimator("gmm"), {"n_components": [1, 2]}, cv=cv, n_jobs=2).fit(blobs)
    assert search.best_params_ == {"n_components": 2}
    from sklearn.model_selection import cross_val_score

    assert np.isfinite(cross_val_score(genlab.Estimator("gmm", n_components=2), blobs, cv=cv, n_jobs=2)).all()
    flow = genlab.Estimator("realnvp", n_layers=2, hidden=8, epochs=1, batch_size=64, threads=1)
    search = GridSearchCV(flow, {"hidden": [4, 8]}, cv=cv, n_jobs=2).fit(blobs)
    assert np.isfinite(search.best_score_)
    z = search.best_estimator_.transform(blobs[:4])
    np.testing.assert_allclose(pickle.loads(pickle.dumps(search.best_estimator_)).transform(blobs[:4]), z)


def test_pandas_in_and_out(blobs):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(blobs, columns=["a", "b"])
    est = genlab.Estimator("gmm", n_components=2).fit(df)
    assert list(est.feature_names_in_) == ["a", "b"]
    with pytest.raises(ValueError, match="feature names"):
        est.score(df[["b", "a"]])
    s = est.sample(6, random_state=0, as_frame=True)
    assert list(s.columns) == ["a", "b"] and len(s) == 6
    with pytest.raises(TypeError, match="column 'c'"):
        genlab.Estimator("gmm").fit(df.assign(c="x"))
    ae = genlab.Estimator("ae", hidden=8, latent_dim=2, epochs=1).set_output(transform="pandas").fit(df)
    codes = ae.transform(df)
    assert isinstance(codes, pd.DataFrame) and list(codes.columns) == ["ae0", "ae1"]


def test_category_columns_go_to_categorical_families():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 200)
    df = pd.DataFrame({"colour": pd.Categorical(np.array(["red", "green", "blue"])[a]),
                       "size": pd.Categorical(np.where(rng.random(200) < 0.8, a % 2, 1 - a % 2).astype(str))})
    est = genlab.Estimator("bayesnet").fit(df)
    assert est.spec_.kind.value == "categorical" and est.spec_.cardinalities == (3, 2)
    assert np.isfinite(est.score(df)) and est.score(df) < 0
    s = est.sample(50, random_state=0, as_frame=True)
    assert set(s["colour"].unique()) <= {"red", "green", "blue"} and s["size"].dtype == "category"
    with pytest.raises(ValueError, match="not seen in training"):
        est.score(df.assign(colour=pd.Categorical(["purple"] * 200)))
    with pytest.raises(TypeError, match="does not model categorical data"):
        genlab.Estimator("maf").fit(df)
