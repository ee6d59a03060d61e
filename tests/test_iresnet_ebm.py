"""i-ResNet (spectral norm, fixed-point inverse, log-det series) and EBM (Langevin, CD training)."""
from __future__ import annotations

import math

import pytest
import torch

import genlab
from genlab.nn.spectral import (FixedPointError, InvertibleResBlock, SpectralLinear,
                                series_logdet_exact_trace)
from genlab.samplers.langevin import Langevin

from conftest import fit_tiny


def _stretched_block(dim: int, coeff: float = 0.9, seed: int = 0) -> InvertibleResBlock:
    """A float64 block whose raw weights are large, so every layer sits at its spectral bound
    (the most nonlinear, least contractive case)."""
    torch.manual_seed(seed)
    block = InvertibleResBlock(dim, (16, 16), coeff).double()
    with torch.no_grad():
        for m in block.g:
            if isinstance(m, SpectralLinear):
                m.weight.mul_(10)
                m.bias.normal_()
    block.power_iteration(200)
    return block


# -- spectral normalisation ------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [0.05, 10.0])
def test_spectral_norm_bounds_the_largest_singular_value(scale):
    torch.manual_seed(1)
    layer = SpectralLinear(7, 5, coeff=0.9).double()
    with torch.no_grad():
        layer.weight.mul_(scale)
    layer.power_iteration(100)
    w_hat = layer.normalized_weight()
    top = torch.linalg.svdvals(w_hat)[0]
    assert top <= 0.9 + 1e-6
    if torch.linalg.svdvals(layer.weight)[0] <= 0.9:  # a weight already inside the bound is kept
        torch.testing.assert_close(w_hat, layer.weight)
    else:  # ... and one outside is scaled onto it
        assert abs(top - 0.9) < 1e-6


def test_block_jacobian_is_a_contraction():
    block = _stretched_block(2)
    x = torch.randn(50, 2, dtype=torch.float64)
    _, jac = block.jacobian(x)
    assert torch.linalg.matrix_norm(jac, ord=2).max() <= 0.9 ** 3 + 1e-9  # Lip(g) <= c^layers


# -- inverse (the whole flow's round trip: every `Bijective` family, test_identities.py) -------------
def test_fixed_point_inverse_of_a_block_at_its_spectral_bound_float64():
    block = _stretched_block(16)
    x = torch.randn(32, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    with torch.no_grad():
        y, _ = block.forward_exact(x)
        assert (y - x).abs().max() > 0.1  # g is far from zero
        torch.testing.assert_close(block.inverse(y, tol=1e-13, max_iter=1000), x, rtol=0, atol=1e-10)


def test_non_convergence_is_reported():
    block = _stretched_block(2)
    with pytest.raises(FixedPointError, match="did not converge.*max_iter"):
        block.inverse(torch.randn(4, 2, dtype=torch.float64) * 3, tol=1e-14, max_iter=3)


# -- log-determinant ---------------------------------------------------------------------------------
def test_power_series_with_exact_traces_is_within_the_truncation_bound():
    block = _stretched_block(2)
    x = torch.randn(64, 2, dtype=torch.float64) * 2
    _, exact = block.forward_exact(x)
    _, jac = block.jacobian(x)
    lip = float(torch.linalg.matrix_norm(jac.detach(), ord=2).max())
    for n in (2, 5, 20):
        bound = 2 * lip ** (n + 1) / ((n + 1) * (1 - lip))  # D L^(n+1) / ((n+1)(1-L)), D = 2
        err = (series_logdet_exact_trace(jac, n) - exact).abs().max()
        assert err <= bound + 1e-12, (n, float(err), bound)


def test_hutchinson_estimate_matches_the_exact_series_within_its_standard_error():
    # each draw v^T J^k v is unbiased for tr(J^k); with R independent draws the mean's error is
    # ~SE = sd / sqrt(R), so 5 SE bounds it except with probability ~6e-7 per point
    block = _stretched_block(2)
    x = torch.randn(16, 2, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    n_terms, reps = 12, 300
    draws = torch.stack([block.forward_series(x.clone(), n_terms, 1, g, create_graph=False)[1].detach()
                         for _ in range(reps)])
    _, jac = block.jacobian(x)
    target = series_logdet_exact_trace(jac, n_terms)
    se = draws.std(0) / math.sqrt(reps)
    assert ((draws.mean(0) - target).abs() <= 5 * se + 1e-12).all()
    assert se.max() < 0.05  # the check above is not vacuous


# -- Langevin and the EBM ----------------------------------------------------------------------------
def test_langevin_samples_a_standard_gaussian():
    # E = |x|^2/2; with step h the chain's stationary variance is 1/(1 - h/2) = 1.005 (h = 0.01).
    # n = 4000 chains: SE(mean) = 1/sqrt(n) = 0.016, SE(var) = sqrt(2/n) = 0.022; tolerances ~5 SE.
    sampler = Langevin(step_size=0.01, n_steps=800, init="uniform", init_scale=3.0)
    g = torch.Generator().manual_seed(0)
    x = sampler(lambda v: 0.5 * v.pow(2).sum(1), sampler.init_noise(4000, (2,), generator=g), generator=g)
    assert x.mean(0).abs().max() < 0.08
    assert (x.var(0) - 1 / (1 - 0.005)).abs().max() < 0.11
    assert abs(float(torch.corrcoef(x.T)[0, 1])) < 0.08


def test_trained_ebm_gives_data_lower_energy_than_far_away_points(moons):
    model, _ = fit_tiny("ebm", moons, epochs=15)
    x = moons.x
    g = torch.Generator().manual_seed(0)
    angle = torch.rand(len(x), generator=g) * 2 * math.pi
    far = x.mean(0) + 4 * x.std(0) * torch.stack([angle.cos(), angle.sin()], 1)  # 4 sd away
    with torch.no_grad():
        e_data, e_far = model.energy(x), model.energy(far)
    assert e_data.mean() < e_far.mean() - 1.0
    assert (e_far > e_data.median()).float().mean() > 0.95


def test_ebm_buffer_is_saved_and_sampling_from_it_is_reproducible(moons, tmp_path):
    model, _ = fit_tiny("ebm", moons, epochs=1)
    model.config.sample_init = "buffer"
    genlab.save(model, tmp_path)
    back = genlab.load(tmp_path)
    torch.testing.assert_close(back.replay, model.replay, rtol=0, atol=0)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    torch.testing.assert_close(back.sample(5, generator=g()), model.sample(5, generator=g()), rtol=0, atol=0)
    with pytest.raises(genlab.NotSupported, match="density"):
        model.log_prob(moons.x[:3])
