"""`genlab.metrics` as one namespace: every name imports, and each function honours an identity."""
from __future__ import annotations

import math

import pytest
import torch

import genlab
from genlab.data import DataSpec
from genlab.metrics import (Estimate, ais, bits_per_dim, density_coverage, elbo, fid, iwae, kl, memorization, mmd,
                            nll, perplexity, precision_recall)
from genlab.train import TrainConfig, Trainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def gauss():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 0.5])
    model = genlab.make("gaussian", DataSpec((2,)), seed=0)
    return Trainer(model, TrainConfig(epochs=1, progress=False, device="cpu")).fit(x), x


@pytest.fixture(scope="module")
def vae():
    x = torch.randn(128, 2, generator=torch.Generator().manual_seed(1))
    model = genlab.make("vae", DataSpec((2,)), seed=0, hidden=8, latent_dim=2)
    return Trainer(model, TrainConfig(epochs=1, batch_size=64, progress=False, device="cpu")).fit(x), x


def test_nll_bits_per_dim_and_perplexity_agree(gauss):
    model, x = gauss
    e = nll(model, x)
    assert isinstance(e, Estimate) and e.n == 300 and e.stderr > 0
    assert e.value == pytest.approx(-float(model.log_prob(x).double().mean()), rel=1e-6)
    assert bits_per_dim(e, 2).value == pytest.approx(e.value / (2 * math.log(2)))
    per_token = Estimate(e.value / 2, e.stderr / 2, e.n)      # two "tokens" per example
    p = perplexity(per_token)
    assert p.value == pytest.approx(math.exp(e.value / 2)) and p.stderr == pytest.approx(p.value * per_token.stderr)
    assert perplexity(math.log(7.0)) == pytest.approx(7.0)    # uniform over 7 tokens


def test_kl_of_a_distribution_with_itself_is_zero(gauss):
    model, x = gauss
    e = kl(x, model, model)
    assert e.value == 0.0 and e.stderr == 0.0
    other = lambda t: -0.5 * (t ** 2).sum(1) - math.log(2 * math.pi)   # N(0, I)
    assert kl(x, model, other).value > 0


def test_two_sample_figures_of_identical_sets(gauss):
    _, x = gauss
    m = mmd(x, x.clone())
    assert abs(m.value) < 3 * m.stderr + 1e-3
    assert mmd(x, x + 3.0).value > 0.1
    p, r = precision_recall(x, x.clone())
    d, c = density_coverage(x, x.clone())
    assert p.value == 1.0 and r.value == 1.0 and c.value == 1.0 and d.value == pytest.approx(1.0, abs=0.3)
    f = fid(x, x.clone(), min_examples=10, n_boot=5)
    assert abs(f.value) < 1e-6
    copies = memorization(x[:100].clone(), x[:100], x[100:200], n_boot=10)
    assert copies.flagged and copies.exact_copy_share.value == 1.0 and copies.distance_ratio.value == 0.0
    fresh = memorization(x[200:300], x[:100], x[100:200], n_boot=10)
    assert not fresh.flagged and fresh.exact_copy_share.value == 0.0


def test_variational_bounds_are_ordered(vae):
    model, x = vae
    g = lambda: torch.Generator().manual_seed(0)
    e1 = elbo(model, x[:32], generator=g())
    k1, k16 = iwae(model, x[:32], 1, generator=g()), iwae(model, x[:32], 16, generator=g())
    assert k16.value >= k1.value - 3 * k1.stderr     # IWAE_k grows with k (Burda et al. Thm 1)
    assert abs(e1.value - k1.value) < 5 * max(e1.stderr, 1e-3)      # ELBO = IWAE_1 in expectation
    a = ais(model, x[:8], steps=20, chains=4, generator=g())
    assert a.value <= -k1.value + 5 * max(k1.stderr, a.stderr)       # -log p <= -ELBO, up to noise
    with pytest.raises(genlab.NotSupported, match="not a variational bound"):
        elbo(genlab.make("gaussian", DataSpec((2,)), seed=0), x)
