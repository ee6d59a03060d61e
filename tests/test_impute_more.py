"""Imputation by RePaint (diffusion), ancestral draws (autoregressive) and VAE chains: identities
that fail if the conditioning is wrong (closed-form moments, exact enumeration)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from genlab.data.spec import DataSpec, Kind
from genlab.nn.masked import hidden_degrees
from genlab.protocol import NotSupported
from genlab import make
from genlab.tasks import impute as I
from genlab.tasks.impute_diffusion import repaint_path

F64 = torch.float64


# -- RePaint --------------------------------------------------------------------------------------
def test_repaint_path_visits_and_counts():
    assert repaint_path(5) == [5, 4, 3, 2, 1, 0]
    p = repaint_path(12, jump=3, resample=4)
    assert p[0] == 12 and p[-1] == 0 and all(abs(a - b) == 1 for a, b in zip(p, p[1:]))
    downs = sum(b < a for a, b in zip(p, p[1:]))
    assert downs == 12 + 3 * 3 * len(range(0, 12 - 3, 3))  # each jump point: (resample-1) x jump extra
    with pytest.raises(ValueError, match="resample"):
        repaint_path(5, resample=0)


def _gaussian_ddpm(T: int, mu: torch.Tensor, S: torch.Tensor, variance: str = "beta"):
    """A DDPM on 2-D continuous data whose noise predictor is the exact E[eps | x_t] for
    x_0 ~ N(mu, S): ``sqrt(1 - ab) (ab S + (1 - ab) I)^-1 (x_t - sqrt(ab) mu)``."""
    model = make("ddpm", DataSpec((2,)), seed=0, timesteps=T, hidden=4, depth=0, variance=variance)
    model = model.double()  # preprocessing not fitted: model space = data space
    abar = model.schedule.abar
    inv = torch.stack([torch.linalg.inv(a * S + (1 - a) * torch.eye(2, dtype=F64)) for a in abar])

    def eps(x, t, y=None):
        a = abar[t[0] - 1]
        return (1 - a).sqrt() * (x - a.sqrt() * mu) @ inv[t[0] - 1]
    model.predict_eps = eps
    return model


def _repaint_moments(model, mu, S, x0, miss, jump, resample):
    """Exact mean and covariance of RePaint's output when eps is linear in x_t: every step is
    affine plus independent Gaussian noise, so the moments follow a closed recursion."""
    sched = model.schedule.respace(model.schedule.timesteps(None))
    P = torch.diag(miss.to(F64))
    Q = torch.eye(2, dtype=F64) - P
    path = repaint_path(len(sched.betas), jump, resample)
    ab = lambda i: float(sched.abar[i - 1]) if i > 0 else 1.0  # noqa: E731
    m, C = Q @ x0 * ab(path[0]) ** 0.5, P + Q * (1 - ab(path[0]))
    for a, b in zip(path[:-1], path[1:]):
        if b == a + 1:
            beta = float(sched.betas[b - 1])
            m, C = (1 - beta) ** 0.5 * m, (1 - beta) * C + beta * torch.eye(2, dtype=F64)
            continue
        A = ab(a)
        K = (1 - A) ** 0.5 * torch.linalg.inv(A * S + (1 - A) * torch.eye(2, dtype=F64))  # eps = K (x - sqrt(A) mu)
        X0 = (torch.eye(2, dtype=F64) - (1 - A) ** 0.5 * K) / A ** 0.5                # x0_hat = X0 x + k0
        k0 = (1 - A) ** 0.5 * K @ (A ** 0.5 * mu) / A ** 0.5
        L = float(sched.post_c0[a - 1]) * X0 + float(sched.post_ct[a - 1]) * torch.eye(2, dtype=F64)
        l0 = float(sched.post_c0[a - 1]) * k0
        var = float(sched.betas[a - 1]) if b > 0 else 0.0
        m = P @ (L @ m + l0) + Q @ x0 * ab(b) ** 0.5
        C = P @ (L @ C @ L.T + var * torch.eye(2, dtype=F64)) @ P + Q * (1 - ab(b))
    return m, C


@pytest.mark.parametrize("jump,resample", [(1, 1), (2, 3)])
def test_repaint_draws_follow_the_exact_moment_recursion(jump, resample):
    mu, S = torch.tensor([0.5, -0.5], dtype=F64), torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=F64)
    model = _gaussian_ddpm(12, mu, S)
    n = 6000
    x0 = torch.tensor([1.5, 0.0], dtype=F64)
    miss = torch.tensor([False, True])
    info = {}
    d = I.impute(model, x0.repeat(n, 1), miss.repeat(n, 1), 1, torch.Generator().manual_seed(0),
                 jump=jump, resample=resample, info=info)[0]
    assert info["method"] == "repaint"
    assert torch.equal(d[:, 0], x0[0].expand(n))                     # observed entries kept exactly
    m, C = _repaint_moments(model, mu, S, x0, miss, jump, resample)
    v = float(C[1, 1])
    assert abs(float(d[:, 1].mean()) - float(m[1])) < 4 * math.sqrt(v / n)
    assert abs(float(d[:, 1].var()) / v - 1) < 4 * math.sqrt(2 / n)


def test_repaint_resampling_moves_towards_the_true_conditional():
    """Replacement alone under-conditions correlated entries; resampling closes part of the gap
    (Lugmayr et al. sec. 4.2). Computed from the exact moments, so free of Monte-Carlo error."""
    mu, S = torch.tensor([0.5, -0.5], dtype=F64), torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=F64)
    model = _gaussian_ddpm(20, mu, S)
    x0, miss = torch.tensor([1.5, 0.0], dtype=F64), torch.tensor([False, True])
    truth = float(mu[1] + S[1, 0] / S[0, 0] * (x0[0] - mu[0]))  # 0.3
    gaps = [abs(float(_repaint_moments(model, mu, S, x0, miss, j, r)[0][1]) - truth) for j, r in ((1, 1), (4, 5))]
    assert gaps[1] < 0.7 * gaps[0]


def test_repaint_on_images_keeps_observed_levels():
    from genlab.data import load_dataset
    ds = load_dataset("digits", n=32)
    model = make("ddpm", ds.spec, seed=0, timesteps=6, channels=8)
    model.setup(ds.x)
    mask = torch.zeros(ds.x[:4].shape, dtype=torch.bool)
    mask[..., 4:, :] = True                                      # bottom half of each image
    d = I.impute(model, ds.x[:4], mask, 2, torch.Generator().manual_seed(0), jump=2, resample=2)
    assert d.shape == (2, *ds.x[:4].shape) and torch.equal(d[:, ~mask], ds.x[:4][~mask].expand(2, -1))
    assert ((d >= 0) & (d <= 16) & (d == d.round())).all()
    assert (d[0][mask] != d[1][mask]).any()


# -- autoregressive: ancestral draws vs enumeration ------------------------------------------------
def _binary_spec(d=4):
    return DataSpec((d,), Kind.BINARY, levels=2)


def _sharpen(model, scale=3.0):
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def _exact_conditional(model, x_obs, miss):
    """p(x_m | x_o) by enumerating every completion: dict completion tuple -> probability."""
    combos = torch.tensor(list(itertools.product([0.0, 1.0], repeat=int(miss.sum()))))
    full = x_obs.repeat(len(combos), 1)
    full[:, miss] = combos
    with torch.no_grad():
        p = torch.softmax(model.log_prob(full).double(), 0)
    return {tuple(c.long().tolist()): float(q) for c, q in zip(combos, p)}


def _check_draws(draws, exact, n, sigmas=4.5):
    assert draws.shape == (n, len(next(iter(exact))))
    for combo, p in exact.items():
        freq = float((draws == torch.tensor(combo, dtype=draws.dtype)).all(1).double().mean())
        assert abs(freq - p) < sigmas * math.sqrt(p * (1 - p) / n) + 1e-3, (combo, freq, p)


@pytest.mark.parametrize("family,config", [("made", {"hidden": 16, "n_orders": 1}),
                                           ("transformer", {"d_model": 8, "n_layers": 1, "n_heads": 2}),
                                           ("pixelcnn", {"channels": 8, "n_layers": 2})])
def test_ancestral_draws_match_enumeration(family, config):
    spec = DataSpec((1, 2, 2), Kind.BINARY, levels=2) if family == "pixelcnn" else _binary_spec()
    model = _sharpen(make(family, spec, seed=1, **config), 4.0 if family == "made" else 1.5).eval()
    x = torch.tensor([1.0, 0.0, 0.0, 0.0])
    miss = torch.tensor([False, False, True, True])
    n = 4000
    assert I.method_for(model, miss.repeat(n, 1)) == "ancestral"
    d = I.impute(model, x.repeat(n, 1), miss.repeat(n, 1), 1, torch.Generator().manual_seed(0))[0].reshape(n, -1)
    exact = _exact_conditional(model, x, miss)
    assert max(exact.values()) < 0.9   # a non-trivial conditional
    _check_draws(d[:, 2:], exact, n)


def test_ancestral_with_two_orderings_weights_them_by_the_prefix():
    """MADE's ensemble of two orderings in which {2, 3} come last: the draw picks an ordering
    with probability ∝ p_k(x_o), then draws in it; checked against the ensemble's enumeration."""
    model = make("made", _binary_spec(), seed=3, hidden=16, n_orders=2)
    g = torch.Generator().manual_seed(0)
    model.net._set_masks(1, torch.tensor([1, 0, 3, 2]), hidden_degrees((16, 16), 4, g))
    model = _sharpen(model, 4.0).eval()
    x, miss = torch.tensor([0.0, 1.0, 0.0, 0.0]), torch.tensor([False, False, True, True])
    n = 4000
    d = I.impute(model, x.repeat(n, 1), miss.repeat(n, 1), 1, torch.Generator().manual_seed(1))[0]
    _check_draws(d[:, 2:], _exact_conditional(model, x, miss), n)
    # entry 3 before entry 2 in ordering 1: {0, 2} missing is last in neither -> MCMC
    assert I.method_for(model, torch.tensor([[True, False, True, False]])) == "mcmc"


def test_missing_not_last_falls_back_to_mcmc_and_says_so():
    model = _sharpen(make("made", _binary_spec(), seed=2, hidden=16, n_orders=1), 4.0).eval()
    x = torch.tensor([0.0, 1.0, 0.0, 1.0])
    first = torch.tensor([True, False, True, False])
    last = torch.tensor([False, False, True, True])
    n = 2000
    mask = torch.stack([first] * n + [last] * 10)
    assert I.method_for(model, first.repeat(n, 1)) == "mcmc"
    assert I.method_for(model, mask) == "ancestral+mcmc"
    info = {}
    d = I.impute(model, x.repeat(n + 10, 1), mask, 1, torch.Generator().manual_seed(0), sweeps=20, info=info)[0]
    assert info["method"] == "ancestral+mcmc" and "10 of 2010 rows" in info["note"]
    _check_draws(d[:n][:, [0, 2]], _exact_conditional(model, x, first), n, sigmas=6)
    with pytest.raises(ValueError, match="come last"):
        I.impute(model, x.repeat(3, 1), first.repeat(3, 1), 1, method="ancestral")


def test_autoregressive_view_orders_are_causal():
    """The order each view reports is the model's: parameters of the entry at place p do not
    move when an entry at a later place changes (made, transformer, pixelcnn)."""
    from genlab.tasks.impute_ar import ar_view
    img = DataSpec((2, 2, 2), Kind.DISCRETE, levels=4)
    cases = [("made", _binary_spec(5), {"hidden": 16, "n_orders": 2}),
             ("transformer", img, {"d_model": 8, "n_layers": 1, "n_heads": 2}),
             ("pixelcnn", img, {"channels": 8, "n_layers": 2})]
    g = torch.Generator().manual_seed(0)
    for fam, spec, cfg in cases:
        model = make(fam, spec, seed=0, **cfg).eval()
        orders, fn = ar_view(model)
        z = torch.randint(spec.levels, (3, spec.dim), generator=g).float()
        for k, order in enumerate(orders):
            batch = [z]  # z, then z with every entry after place p changed, for each p: one pass
            for p in range(spec.dim - 1):
                z2 = z.clone()
                z2[:, order[p + 1:]] = (z2[:, order[p + 1:]] + 1) % spec.levels
                batch.append(z2)
            out = fn(torch.cat(batch), k).reshape(spec.dim, len(z), spec.dim, -1)
            for p in range(spec.dim - 1):
                torch.testing.assert_close(out[p + 1][:, order[:p + 1]], out[0][:, order[:p + 1]], msg=f"{fam} {k} {p}")


# -- VAE: pseudo-Gibbs and Metropolis-within-Gibbs on a linear-Gaussian model ----------------------
W = torch.tensor([[1.0, 0.5], [1.0, -0.5], [-1.0, 0.5], [0.5, 1.0]], dtype=F64)
B = torch.tensor([0.2, -0.1, 0.0, 0.3], dtype=F64)
SIGMA = 0.4


def _linear_vae(mean_scale=1.0, std_scale=1.0):
    """p(c) = N(0, I), p(x | c) = N(W c + b, SIGMA^2 I); the encoder is the exact posterior
    N(Sz W^T (x - b) / SIGMA^2, Sz), Sz = (I + W^T W / SIGMA^2)^-1 (diagonal: W's columns are
    orthogonal), optionally distorted (mean * mean_scale, sd * std_scale)."""
    model = make("vae", DataSpec((4,)), seed=0, latent_dim=2, hidden=4).double()
    Sz = torch.linalg.inv(torch.eye(2, dtype=F64) + W.T @ W / SIGMA ** 2)
    assert torch.allclose(Sz, torch.diag(Sz.diagonal()))
    A = mean_scale * Sz @ W.T / SIGMA ** 2
    enc, dec = nn.Linear(4, 4).double(), nn.Linear(2, 4).double()
    with torch.no_grad():
        enc.weight.zero_()
        enc.weight[:2] = A
        enc.bias[:2] = -A @ B
        enc.bias[2:] = (Sz.diagonal() * std_scale ** 2).log()
        dec.weight.copy_(W)
        dec.bias.copy_(B)
        y = math.log(SIGMA) + 7.0  # log_scale = -7 + softplus(raw + 7)
        model.raw_log_scale.fill_(-7.0 + y + math.log(-math.expm1(-y)))
    model.encoder, model.decoder = enc, dec
    torch.testing.assert_close(model.log_scale(), torch.full((4,), math.log(SIGMA), dtype=F64))
    return model


def _vae_moments(model, method, n=3000, sweeps=30):
    x = torch.tensor([1.0, 0.5, -0.5, 0.0], dtype=F64)
    miss = torch.tensor([False, True, False, True])
    info = {}
    d = I.impute(model, x.repeat(n, 1), miss.repeat(n, 1), 1, torch.Generator().manual_seed(0), sweeps=sweeps,
                 method=method, info=info)[0]
    assert torch.equal(d[:, ~miss], x[~miss].repeat(n, 1))
    from genlab.tasks.impute import conditional_gaussian
    mu, sig, _ = conditional_gaussian(B, W @ W.T + SIGMA ** 2 * torch.eye(4, dtype=F64), x[~miss], ~miss)
    return d[:, miss], mu, sig, info


@pytest.mark.parametrize("method,distorted", [("pseudo-gibbs", False), ("mwg", False), ("mwg", True)])
def test_vae_chains_match_the_exact_conditional(method, distorted):
    model = _linear_vae(0.6, 1.5) if distorted else _linear_vae()
    d, mu, sig, info = _vae_moments(model, method)
    n = len(d)
    se = (sig.diagonal() / n).sqrt()
    assert ((d.mean(0) - mu).abs() < 5 * se).all(), (d.mean(0), mu)
    assert ((d.var(0) / sig.diagonal() - 1).abs() < 0.12).all(), (d.var(0), sig.diagonal())
    assert abs(float(torch.corrcoef(d.T)[0, 1]) - float(sig[0, 1] / sig.diagonal().prod().sqrt())) < 0.08
    if method == "mwg" and not distorted:
        assert info["acceptance"] > 0.99   # exact posterior as proposal: log p(x, c) - log q(c | x) is constant
    if distorted:
        assert 0.2 < info["acceptance"] < 0.99


def test_pseudo_gibbs_with_a_wrong_encoder_is_biased_where_mwg_is_not():
    d, mu, sig, _ = _vae_moments(_linear_vae(0.6, 1.5), "pseudo-gibbs")
    assert (d.mean(0) - mu).abs().max() > 10 * float((sig.diagonal() / len(d)).sqrt().max())


def test_vae_draws_differ_on_discrete_images():
    from genlab.data import load_dataset
    ds = load_dataset("digits", n=64)
    model = make("vae", ds.spec, seed=0, hidden=8, latent_dim=2)
    model.setup(ds.x)
    mask = torch.rand(ds.x[:8].shape, generator=torch.Generator().manual_seed(0)) < 0.5
    d = I.impute(model, ds.x[:8], mask, 2, torch.Generator().manual_seed(0), sweeps=3)
    assert I.method_for(model) == "mwg"
    assert (d[0][mask] != d[1][mask]).double().mean() > 0.3      # draws differ
    assert torch.equal(d[0][~mask], ds.x[:8][~mask])
    assert ((d >= 0) & (d <= 16) & (d == d.round())).all()       # on the data's levels


def test_method_choice_and_errors():
    from genlab.data import load_dataset
    spec = load_dataset("moons", n=64).spec
    assert I.method_for(make("ddpm", spec, seed=0, timesteps=5, hidden=4)) == "repaint"
    assert I.method_for(make("iwae", spec, seed=0, hidden=4, latent_dim=2)) == "mwg"
    assert I.method_for(make("ae", spec, seed=0, hidden=4, latent_dim=2)) == "projection"
    assert I.method_for(make("made", spec, seed=0, hidden=4)) == "ancestral+mcmc"
    gauss = make("gaussian", spec, seed=0)
    with pytest.raises(NotSupported, match="repaint"):
        I.impute(gauss, torch.zeros(2, 2), torch.ones(2, 2, dtype=torch.bool), method="repaint")
    with pytest.raises(ValueError, match="method must be one of"):
        I.impute(gauss, torch.zeros(2, 2), torch.ones(2, 2, dtype=torch.bool), method="magic")
