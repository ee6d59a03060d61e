"""Normalizers of energy models (`genlab.protocol.Partition`): quadrature and AIS on a box against
closed forms, the ebm's normalized density, and `evaluate` reporting it."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.data import Dataset
from genlab.evaluate import EvalSettings, evaluate
from genlab.samplers.ais_energy import box_ais, box_quadrature
from genlab.data.spec import DataSpec
from genlab.protocol import Estimate, Partition

from conftest import fit_tiny


def _quadratic(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * z.flatten(1).square().sum(1)


def _gauss_box_log_z(low: torch.Tensor, high: torch.Tensor) -> float:
    """log of the integral of exp(-|z|^2 / 2) over the box: prod_d sqrt(2 pi) (Phi(h_d) - Phi(l_d))."""
    n = torch.distributions.Normal(0.0, 1.0)
    return float(sum(0.5 * math.log(2 * math.pi) + math.log(float(n.cdf(h) - n.cdf(lo)))
                     for lo, h in zip(low.double().flatten(), high.double().flatten())))


def test_quadrature_and_ais_match_a_gaussian_on_a_box():
    low, high = torch.tensor([-1.5, -2.0]), torch.tensor([2.0, 1.0])
    exact = _gauss_box_log_z(low, high)
    assert box_quadrature(_quadratic, low, high) == pytest.approx(exact, abs=1e-4)
    est = box_ais(_quadratic, low, high, steps=200, chains=128, generator=torch.Generator().manual_seed(0))
    assert abs(est.value - exact) < max(4 * est.stderr, 0.02) and est.n == 128
    # five dimensions: quadrature refuses, AIS still works
    low5, high5 = -torch.ones(5) * 1.2, torch.tensor([0.5, 1.0, 1.5, 2.0, 3.0])
    with pytest.raises(ValueError, match="use AIS"):
        box_quadrature(_quadratic, low5, high5)
    est5 = box_ais(_quadratic, low5, high5, steps=300, chains=128, generator=torch.Generator().manual_seed(1))
    assert abs(est5.value - _gauss_box_log_z(low5, high5)) < max(4 * est5.stderr, 0.05)
    # too few steps: the stochastic lower bound sits visibly below (unnormalized weights mismatch)
    few = box_ais(_quadratic, low5, high5, steps=1, chains=128, generator=torch.Generator().manual_seed(1))
    assert few.value != pytest.approx(est5.value, abs=1e-3)


@pytest.fixture(scope="module")
def ebm(moons):
    model, _ = fit_tiny("ebm", moons, epochs=1)
    return model


def test_ebm_density_is_normalized_on_its_box(ebm, moons):
    assert isinstance(ebm, Partition) and ebm.partition_method() == "quadrature"
    log_z, how = ebm.log_partition()
    assert how == "quadrature" and log_z.stderr == 0
    ais, how = ebm.log_partition("ais", steps=300, chains=128, generator=torch.Generator().manual_seed(0))
    assert how == "ais" and abs(ais.value - log_z.value) < max(4 * ais.stderr, 0.05)
    # data space: exp(log p) sums to one over a grid covering the box (the standardization's Jacobian
    # is in the energy); outside the box the density is 0
    lo, hi = moons.x.min(0).values - 3, moons.x.max(0).values + 3
    h = 0.02
    axes = [torch.arange(float(lo[i]), float(hi[i]), h) + h / 2 for i in range(2)]
    grid = torch.cartesian_prod(*axes)
    lp, _ = ebm.log_prob_estimate(grid, log_z=log_z)
    assert float(lp.exp().sum()) * h * h == pytest.approx(1.0, abs=0.02)
    far, _ = ebm.log_prob_estimate(torch.tensor([[50.0, 50.0]]), log_z=log_z)
    assert far.item() == -math.inf and torch.isfinite(ebm.log_prob_estimate(moons.x[:20], log_z=log_z)[0]).all()
    with pytest.raises(ValueError, match="quadrature or ais"):
        ebm.log_partition("exact")


def test_evaluate_reports_energy_models_nll(ebm, moons):
    test = Dataset(moons.x[:64], None, moons.spec, "moons")
    res = evaluate(ebm, Dataset(moons.x[64:], None, moons.spec, "moons"), test,
                   settings=EvalSettings(max_examples=64, fid_min_examples=10, max_sample_seconds=5))
    m = res["metrics"]
    lp, _ = ebm.log_prob_estimate(test.x)
    assert m["nll_nats"]["value"] == pytest.approx(float(-lp.mean()), rel=1e-9)
    assert m["nll_is"] == "exact up to quadrature error" and m["log_partition"]["method"] == "quadrature"


class _FakePartition:
    """log p = -E - log Z with a chosen log Z estimate (AIS), for the reporting rules."""

    name = "fake"

    def __init__(self, spec, log_z, stderr):
        self.spec, self._z = spec, Estimate(log_z, stderr, 100)

    def partition_method(self):
        return "ais"

    def log_partition(self, method="auto", *, steps=None, chains=None, generator=None):
        return self._z, "ais"

    def log_prob_estimate(self, x, log_z=None):
        return torch.full((len(x),), -3.0, dtype=torch.float64) - (log_z or self._z).value, "ais"


def test_an_unconverged_or_impossible_ais_log_z_gives_no_nll():
    from genlab.metrics.likelihood import normalized_energy_figures
    from genlab.protocol import NotSupported

    cont = DataSpec(event_shape=(2,))
    disc = DataSpec(event_shape=(2,), kind="discrete", levels=4)
    x = torch.zeros(5, 2)
    ok = normalized_energy_figures(_FakePartition(cont, 1.0, 0.1), x, ais_steps=10)
    assert ok["nll_nats"]["value"] == pytest.approx(4.0)
    with pytest.raises(NotSupported, match="did not converge"):
        normalized_energy_figures(_FakePartition(cont, 1.0, 2.0), x, ais_steps=10)
    with pytest.raises(NotSupported, match="negative mean NLL"):  # P(x) = e^2 > 1 on discrete data
        normalized_energy_figures(_FakePartition(disc, -5.0, 0.1), x, ais_steps=10)
    assert normalized_energy_figures(_FakePartition(cont, -5.0, 0.1), x, ais_steps=10)["nll_nats"]["value"] < 0
