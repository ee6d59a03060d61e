"""Closed-form checks of the classic density families: Gaussian, GMM (EM) and KDE."""
import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

from genlab import Batch, DataSpec, make

CENTERS = np.array([[-4.0, 0.0], [4.0, 1.0], [0.0, 5.0]])


def fit(model, x, x_val=None, max_steps=1000):
    """Run the model's full-batch objectives until every one reports done; return the losses."""
    model.setup(x, x_val=x_val)
    x = model.check_input(x)
    g = torch.Generator().manual_seed(0)
    history = []
    for _ in range(max_steps):
        outs = [obj.loss(Batch(x, None, g)) for obj in model.objectives()]
        history.extend(outs)
        if all(o.done for o in outs):
            return history
    raise AssertionError(f"{model.name} did not finish in {max_steps} steps")


def blobs(n_per, scale, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([c + scale * rng.standard_normal((n_per, 2)) for c in CENTERS])


def build(name, dim=2, **config):
    return make(name, DataSpec((dim,)), **config).double()


def test_gaussian_is_the_closed_form_mle():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    x = rng.standard_normal((500, 4)) @ A + np.array([1.0, -2.0, 3.0, 0.5])
    model = build("gaussian", 4, reg=0.0)
    (loss,) = fit(model, torch.from_numpy(x))
    expected = multivariate_normal(mean=x.mean(0), cov=np.cov(x.T, bias=True)).logpdf(x)
    got = model.log_prob(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert loss.done and loss.value.item() == pytest.approx(-expected.mean(), abs=1e-6)


def test_gmm_em_never_decreases_the_likelihood():
    x = torch.from_numpy(blobs(100, 2.0))  # overlapping blobs: EM takes many steps
    model = build("gmm", n_components=4, tol=0.0, kmeans_iters=1)
    model.setup(x)
    (em,) = model.objectives()
    ll = np.array([-em.loss(Batch(x)).value.item() for _ in range(40)])
    assert ll[-1] - ll[0] > 1e-3  # it did move
    assert np.all(np.diff(ll) >= -1e-9), np.diff(ll).min()


def test_gmm_recovers_separated_means():
    x = torch.from_numpy(blobs(200, 0.5))
    model = build("gmm", n_components=3)
    fit(model, x)
    means = model.pre.inverse(model.means).numpy()  # model space -> data space (affine)
    cost = ((means[:, None] - CENTERS[None]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    assert np.sqrt(cost[rows, cols]).max() < 0.15
    np.testing.assert_allclose(np.sort(model.weights.numpy()), [1 / 3] * 3, atol=1e-3)


def test_gmm_matches_sklearn():
    x = blobs(150, 1.0, seed=1)
    model = build("gmm", n_components=3, tol=1e-9)
    fit(model, torch.from_numpy(x))
    ours = model.log_prob(torch.from_numpy(x)).mean().item()
    ref = GaussianMixture(3, covariance_type="full", reg_covar=1e-6, tol=1e-9, max_iter=1000,
                          n_init=5, random_state=0).fit(x).score(x)
    assert ours == pytest.approx(ref, abs=1e-3)


def test_kde_loo_bandwidth_is_interior_and_matches_brute_force():
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((400, 2)))
    model = build("kde")
    (loss,) = fit(model, x)
    h = loss.logs["bandwidth"]
    assert loss.logs["loo"] == 1.0 and model.z_val is None
    assert loss.logs["grid_min"] < h < loss.logs["grid_max"]
    grid = model.candidates().numpy()
    assert h not in (grid[0], grid[-1])
    # brute force leave-one-out mean log-likelihood at the chosen h, in data space
    z = model.points.numpy()
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    loo = logsumexp(-d2 / (2 * h * h), 1) - np.log(len(z) - 1) - np.log(2 * np.pi * h * h)
    logdet = -np.log(model.pre.std.numpy()).sum()
    assert loss.value.item() == pytest.approx(-(loo.mean() + logdet), abs=1e-9)


def test_kde_uses_validation_set_when_given():
    rng = np.random.default_rng(1)
    x, x_val = (torch.from_numpy(rng.standard_normal((n, 2))) for n in (300, 200))
    model = build("kde")
    (loss,) = fit(model, x, x_val=x_val)
    assert loss.logs["loo"] == 0.0
    assert loss.logs["grid_min"] < loss.logs["bandwidth"] < loss.logs["grid_max"]
    val_nll = -model.log_prob(x_val).mean().item()
    assert loss.value.item() == pytest.approx(val_nll, abs=1e-9)


@pytest.mark.parametrize("name", ["gaussian", "gmm", "kde"])
def test_images_are_flattened(name):
    spec = DataSpec((1, 3, 3))
    model = make(name, spec, **({"n_components": 2} if name == "gmm" else {})).double()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((120, 1, 3, 3)))
    fit(model, x)
    lp = model.log_prob(x[:7])
    assert lp.shape == (7,) and torch.isfinite(lp).all()
    s = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, 1, 3, 3) and s.dtype == torch.float64
    again = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, again)
