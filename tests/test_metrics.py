"""Sample metrics against closed forms and brute force (float64)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from genlab.metrics.classifier import (FeatureClassifier, accuracy, classifier_features, conditional_accuracy,
                                      fit_classifier)
from genlab.metrics.fid import fid, frechet_distance
from genlab.metrics.kl import kl_gaussians, kl_monte_carlo
from genlab.metrics.memorization import memorization
from genlab.metrics.reconstruction import reconstruction_rmse
from genlab.metrics.samples import InsufficientData, density_coverage, mmd, precision_recall, standardized
from genlab.protocol import Batch, Latent, NotSupported


@pytest.fixture(autouse=True)
def _one_thread():
    """Many small tensor operations: one thread avoids contention on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _spd(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64)


def _gauss(n: int, mu: torch.Tensor, cov: torch.Tensor, seed: int) -> torch.Tensor:
    z = torch.randn(n, len(mu), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return mu + z @ torch.linalg.cholesky(cov).T


def test_frechet_distance_matches_closed_forms():
    # diagonal (commuting) covariances: |dmu|^2 + sum (sqrt a - sqrt b)^2
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    want = 5.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-10)
    # general covariances: against scipy's matrix square root
    s1, s2 = _spd(5, 1).numpy(), _spd(5, 2).numpy()
    ref = np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(np.zeros(5), s1, np.zeros(5), s2) == pytest.approx(ref, rel=1e-8)
    assert frechet_distance(np.ones(5), s1, np.ones(5), s1) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_two_gaussian_samples_approaches_the_closed_form():
    mu1, mu2 = torch.zeros(3, dtype=torch.float64), torch.tensor([0.5, 0.0, -0.5], dtype=torch.float64)
    c1, c2 = _spd(3, 3), _spd(3, 4)
    want = frechet_distance(mu1.numpy(), c1.numpy(), mu2.numpy(), c2.numpy())
    e = fid(_gauss(20000, mu1, c1, 0), _gauss(20000, mu2, c2, 1), n_boot=20)
    assert e.n == e.n_ref == 20000 and e.stderr > 0
    assert abs(e.value - want) < 5 * e.stderr + 0.01  # plus the O(d/n) upward bias


def test_fid_refuses_few_examples_and_says_why():
    x = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="min_examples=2000.*biased upward"):
        fid(x, x + 1)
    with pytest.raises(NotSupported, match="min_examples=2000"):  # what evaluate lists as not computed
        fid(x, x + 1)
    for refuse in (lambda: mmd(x[:3], x[:3]), lambda: precision_recall(x[:3], x[:3], k=3),
                   lambda: memorization(x[:10], x, x[:1])):
        with pytest.raises(InsufficientData, match="at least"):
            refuse()
    assert fid(x, x + 1, min_examples=500, n_boot=5).value == pytest.approx(4.0, abs=1e-6)


def test_mmd_is_zero_mean_for_one_distribution_and_positive_otherwise():
    z = []
    for s in range(20):
        x, y = (torch.randn(80, 2, generator=torch.Generator().manual_seed(2 * s + k)) for k in (0, 1))
        e = mmd(x, y)
        z.append(e.value / e.stderr)
    z = torch.tensor(z)
    assert abs(float(z.mean())) < 3 / math.sqrt(len(z)) * float(z.std()) + 0.3  # centred on 0
    assert 0.3 < float(z.std()) < 3  # the standard error has the right scale
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(100))
    y = torch.randn(300, 2, generator=torch.Generator().manual_seed(101)) + torch.tensor([1.0, 0.0])
    e = mmd(x, y)
    assert e.value > 3 * e.stderr and e.n == 300 and len(e.extra["bandwidths"]) == 5
    with pytest.raises(ValueError, match="same data set"):
        mmd(x, torch.randn(300, 3))


def test_kl_against_closed_form_and_monte_carlo():
    # 1-D formula: log(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2
    want = math.log(2 / 0.5) + (0.25 + 1.0) / 8 - 0.5
    assert kl_gaussians(torch.tensor([1.0]), torch.tensor([[0.25]]), torch.tensor([0.0]),
                        torch.tensor([[4.0]])) == pytest.approx(want, rel=1e-12)
    mu1, mu2 = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    c1, c2 = _spd(3, 5), _spd(3, 6)
    p = torch.distributions.MultivariateNormal(mu1, c1)
    q = torch.distributions.MultivariateNormal(mu2, c2)
    exact = kl_gaussians(mu1, c1, mu2, c2)
    assert exact == pytest.approx(float(torch.distributions.kl_divergence(p, q)), rel=1e-10)
    x = _gauss(20000, mu1, c1, 7)
    e = kl_monte_carlo(x, p.log_prob, q.log_prob)
    assert e.n == 20000 and abs(e.value - exact) < 4 * e.stderr
    with pytest.raises(ValueError, match="positive definite"):
        kl_gaussians(mu1, -c1, mu2, c2)


def test_precision_recall_and_coverage_identical_and_disjoint_sets():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    p, r = precision_recall(x, x.clone())
    d, c = density_coverage(x, x.clone())
    assert p.value == r.value == c.value == 1.0 and d.value >= 1 / 5
    p, r = precision_recall(x, x + 100)
    d, c = density_coverage(x, x + 100)
    assert p.value == r.value == d.value == c.value == 0.0
    y = torch.randn(300, 2, generator=torch.Generator().manual_seed(1))  # same distribution
    p, r = precision_recall(x, y)
    d, c = density_coverage(x, y)
    assert p.value > 0.85 and r.value > 0.85 and 0.7 < d.value < 1.3 and p.n == 300 and p.n_ref == 300


def test_memorization_flags_copies_and_not_fresh_samples():
    g = torch.Generator().manual_seed(0)
    train, test, fresh = (torch.randn(n, 5, generator=g) for n in (1000, 300, 500))
    copies = train[torch.randperm(1000, generator=g)[:500]] + 1e-4 * torch.randn(500, 5, generator=g)
    m = memorization(copies, train, test, n_boot=50)
    assert m.flagged and m.distance_ratio.value < 0.01 and m.near_copy_share.value == 1.0
    m = memorization(fresh, train, test, n_boot=50)
    assert not m.flagged and abs(m.distance_ratio.value - 1) < 0.2 and m.near_copy_share.value < 0.05
    assert m.exact_copy_share.value == 0.0 and m.nearest_train.shape == (500,)
    exact = memorization(train[:200], train, test, n_boot=10)
    assert exact.flagged and exact.exact_copy_share.value == 1.0


def test_classifier_trains_through_the_trainer_seeded_and_writes_no_file(tmp_path, monkeypatch, digits):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    x, y = digits.x[:150], digits.y[:150]
    rng = torch.get_rng_state()
    clf, info = fit_classifier(x, y, digits.spec, name="digits", x_val=digits.x[150:], y_val=digits.y[150:])
    assert torch.equal(torch.get_rng_state(), rng)  # seeded privately
    assert info["train_accuracy"] > 0.8 and info["val_accuracy"] == accuracy(clf, digits.x[150:], digits.y[150:])
    again, info2 = fit_classifier(x, y, digits.spec, name="digits")
    assert info2["hash"] == info["hash"]
    assert all(torch.equal(a, b) for a, b in zip(clf.state_dict().values(), again.state_dict().values()))
    f = classifier_features(clf, digits.x[150:])
    assert f.shape == (len(digits) - 150, 64) and torch.equal(f, classifier_features(again, digits.x[150:]))
    other, info3 = fit_classifier(x, y, digits.spec, seed=1)
    assert info3["hash"] != info["hash"] and not torch.equal(classifier_features(other, digits.x[150:]), f)
    assert not any(tmp_path.rglob("*"))  # no cache, no file anywhere
    with pytest.raises(NotSupported, match="no class labels"):
        fit_classifier(x, None, digits.spec)


def test_classifier_objective_is_the_cross_entropy_and_features_feed_the_head():
    from genlab.data.spec import DataSpec

    g = torch.Generator().manual_seed(0)
    y = torch.randint(2, (200,), generator=g)
    x = torch.randn(200, 2, generator=g) + 3 * y[:, None] + torch.tensor([5.0, -1.0])
    clf = FeatureClassifier(DataSpec((2,), num_classes=2))
    clf.setup(x)
    assert torch.allclose(clf._scaled(x), (x - x.mean(0)) / x.std(0), atol=1e-5)  # continuous: standardized
    (obj,) = clf.objectives()
    loss = obj.loss(Batch(x[:64], y[:64]))
    assert torch.allclose(loss.value, torch.nn.functional.cross_entropy(clf(x[:64]), y[:64]))
    assert torch.allclose(clf.head(clf.features(x[:8])), clf(x[:8]))
    labels = clf(x[:50]).argmax(1)
    acc = conditional_accuracy(clf, x[:50], labels)
    assert acc["value"] == 1.0 and acc["stderr"] == 0.0 and acc["n"] == 50
    assert conditional_accuracy(clf, x[:50], 1 - labels)["value"] == 0.0  # two classes


class _Shift(Latent):
    """encode = identity, decode = x + c: the reconstruction error is |c| in every entry."""

    def __init__(self, c: float):
        self.c = c

    def encode(self, x):
        return x

    def decode(self, codes):
        return codes + self.c


def test_reconstruction_rmse_and_standardized_features():
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    assert reconstruction_rmse(_Shift(0.0), x)["value"] == 0.0
    r = reconstruction_rmse(_Shift(-0.5), x)
    assert r["value"] == pytest.approx(0.5, rel=1e-6) and r["stderr"] == pytest.approx(0.0, abs=1e-6) and r["n"] == 40
    ref = 3 + 2 * torch.randn(500, 2, 2, generator=torch.Generator().manual_seed(1))
    (z,) = standardized(ref, ref)
    assert z.shape == (500, 4) and torch.allclose(z.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(z.std(0), torch.ones(4, dtype=torch.float64))
