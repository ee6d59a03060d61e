"""Missing-data imputation: draws from p(missing | observed) under a trained model.

`impute(model, x, mask, n_draws, generator)` picks the method from what the model offers:

* Gaussian and Gaussian-mixture families: exact. Per row, the mixture's conditional given the
  observed entries is again a mixture, with responsibilities ``r_k ∝ w_k N(z_o; mu_ko, S_koo)``
  and components ``N(mu_km + S_kmo S_koo^-1 (z_o - mu_ko), S_kmm - S_kmo S_koo^-1 S_kom)``
  (Bishop 2006, eqs. 2.81-2.82), computed in the model space of the model's preprocessing.
* Families with their own exact ``impute(x, missing, method, generator)`` (bayesnet): called.
* Other exact densities and energies: Metropolis-within-Gibbs on ``log p`` (or ``-E``),
  one coordinate at a time (random-walk proposals on the data's levels or scale).
* Latent families with a bound (VAEs): pseudo-Gibbs (Rezende et al. 2014, sec. 5): encode the
  completed example, decode, replace the missing entries, repeat; draws differ by their start.

Shapes: ``x`` and ``mask`` are (n, *event_shape) (or (n, D)); ``mask`` is True where missing.
Returns (n_draws, n, *event_shape) in data space, observed entries copied from ``x``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..protocol import Density, Energy, GaussianMixtureForm, GenerativeModel, Imputer, Latent, NotSupported


def _check(model: GenerativeModel, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    x = torch.as_tensor(x)
    mask = torch.as_tensor(mask).to(torch.bool)
    if mask.shape != x.shape:
        raise ValueError(f"mask must have the shape of x {tuple(x.shape)}, got {tuple(mask.shape)}")
    x = torch.where(mask, torch.zeros((), dtype=x.dtype), x)  # missing values (NaN too) ignored
    return model.check_input(x).reshape(len(x), -1), mask.reshape(len(x), -1)


def method_for(model: GenerativeModel) -> str:
    """The imputation method ``impute`` uses for ``model``, or raise `NotSupported`."""
    if _mixture(model) is not None:
        return "exact-gaussian"
    if isinstance(model, Imputer):
        return "model"
    if model.density is Density.EXACT or (model.density is Density.UNNORMALIZED and isinstance(model, Energy)):
        return "mcmc"
    if isinstance(model, Latent):
        return "pseudo-gibbs"
    raise NotSupported(f"{model.name}: density is '{model.density.value}' and it has no latent space, so "
                       "p(missing | observed) is out of reach; use a family with a likelihood or an encoder")


def impute(model: GenerativeModel, x: Tensor, mask: Tensor, n_draws: int = 5,
           generator: torch.Generator | None = None, *, sweeps: int = 20, method: str | None = None) -> Tensor:
    """Draws of the missing entries (see the module docstring): (n_draws, n, *event_shape).

    ``sweeps``: MCMC / pseudo-Gibbs passes over the missing coordinates. ``method``: force
    ``mcmc`` (any exact density or energy) instead of `method_for`'s choice.
    """
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    xf, miss = _check(model, x, mask)
    method = method or method_for(model)
    if method == "mcmc" and model.density is not Density.EXACT and not isinstance(model, Energy):
        raise NotSupported(f"{model.name}: MCMC imputation needs an exact density or an energy")
    if method not in ("exact-gaussian", "model", "mcmc", "pseudo-gibbs"):
        raise ValueError(f"method must be exact-gaussian, model, mcmc or pseudo-gibbs, got {method!r}")
    with torch.no_grad():
        if method == "exact-gaussian":
            out = torch.stack([_exact(model, xf, miss, g) for _ in range(n_draws)])
        elif method == "model":
            out = torch.stack([model.impute(xf.reshape(len(xf), *model.spec.event_shape),
                                            miss.reshape(len(xf), *model.spec.event_shape),
                                            method="sample", generator=g).reshape(len(xf), -1).to(xf.dtype)
                               for _ in range(n_draws)])
        else:
            rows = xf.repeat(n_draws, 1)
            m = miss.repeat(n_draws, 1)
            start = _start(model, rows, m, g)
            run = _mcmc if method == "mcmc" else _pseudo_gibbs
            out = run(model, start, m, g, sweeps).reshape(n_draws, len(xf), -1)
    out = torch.where(miss, out, xf)
    return out.reshape(n_draws, len(xf), *model.spec.event_shape)


# -- exact: Gaussian mixtures ---------------------------------------------------------------------
def _mixture(model: GenerativeModel) -> tuple[Tensor, Tensor, Tensor] | None:
    """(log weights (K,), means (K, D), scale_tril (K, D, D)) in float64 of a model whose density
    is a Gaussian mixture (`GaussianMixtureForm`), else None."""
    if not isinstance(model, GaussianMixtureForm):
        return None
    return tuple(t.double() for t in model.mixture())


def conditional_gaussian(mean: Tensor, cov: Tensor, z_obs: Tensor, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """N(mean, cov) conditioned on entries ``obs`` (bool (D,)) equal to ``z_obs`` ((O,) or (n, O)):
    the conditional means ((M,) or (n, M)), the conditional covariance (M, M) of the other
    entries, and log N(z_obs; mean_o, cov_oo) (() or (n,))."""
    mis = ~obs
    S_oo, S_mo = cov[obs][:, obs], cov[mis][:, obs]
    if int(obs.sum()) == 0:
        return mean[mis].expand(*z_obs.shape[:-1], int(mis.sum())), cov[mis][:, mis], z_obs.new_zeros(z_obs.shape[:-1])
    L = torch.linalg.cholesky(S_oo)
    d = (z_obs - mean[obs]).reshape(-1, int(obs.sum())).T        # (O, n)
    mu = mean[mis][:, None] + S_mo @ torch.cholesky_solve(d, L)  # mu_m + S_mo S_oo^-1 (z_o - mu_o)
    sig = cov[mis][:, mis] - S_mo @ torch.cholesky_solve(S_mo.T, L)
    w = torch.linalg.solve_triangular(L, d, upper=False)
    ll = -0.5 * (w ** 2).sum(0) - L.diagonal().log().sum() - 0.5 * len(d) * math.log(2 * math.pi)
    return mu.T.reshape(*z_obs.shape[:-1], -1), sig, ll.reshape(z_obs.shape[:-1])


def _exact(model: GenerativeModel, x: Tensor, miss: Tensor, g: torch.Generator) -> Tensor:
    """One draw per row; rows with the same missing pattern share the factorisations."""
    logw, means, tril = _mixture(model)
    covs = tril @ tril.transpose(1, 2)
    z, _ = model.pre(x.reshape(len(x), *model.spec.event_shape), g)
    z = z.reshape(len(x), -1).double()
    out = z.clone()
    patterns, group = torch.unique(miss, dim=0, return_inverse=True)
    for p, pat in enumerate(patterns):
        rows = torch.nonzero(group == p).flatten()
        obs = ~pat
        if not pat.any():
            continue
        parts = [conditional_gaussian(means[k], covs[k], z[rows][:, obs], obs) for k in range(len(logw))]
        resp = torch.softmax(logw + torch.stack([q[2] for q in parts], 1), 1)  # (n_rows, K)
        comp = torch.multinomial(resp, 1, generator=g).flatten()
        for k in comp.unique().tolist():
            sel = comp == k
            mu, sig = parts[k][0][sel], parts[k][1]
            Ls = torch.linalg.cholesky(sig + 1e-10 * torch.eye(len(sig), dtype=sig.dtype))
            eps = torch.randn(int(sel.sum()), len(sig), generator=g, dtype=torch.float64)
            out[rows[sel].unsqueeze(1), torch.nonzero(pat).flatten()] = mu + eps @ Ls.T
    xo = model.pre.inverse(out.to(x.dtype).reshape(len(x), *model.spec.event_shape))
    return xo.reshape(len(x), -1)


# -- approximate: MCMC and pseudo-Gibbs -----------------------------------------------------------
def _start(model: GenerativeModel, x: Tensor, miss: Tensor, g: torch.Generator) -> Tensor:
    """Fill missing entries with random observed values of the same column (or 0 if none)."""
    out = x.clone()
    for j in torch.nonzero(miss.any(0)).flatten().tolist():
        seen = x[~miss[:, j], j]
        k = int(miss[:, j].sum())
        out[miss[:, j], j] = seen[torch.randint(len(seen), (k,), generator=g)] if len(seen) else 0.0
    return out


def _target(model: GenerativeModel, x: Tensor) -> Tensor:
    x = x.reshape(len(x), *model.spec.event_shape)
    if model.density is Density.EXACT:
        return model.log_prob(x).double()
    return -model.energy(x).double()


def _mcmc(model: GenerativeModel, x: Tensor, miss: Tensor, g: torch.Generator, sweeps: int) -> Tensor:
    """Metropolis-within-Gibbs: per sweep, per missing coordinate j, a symmetric random-walk
    proposal (±1..k levels for discrete data, N(0, s_j^2) for continuous data, with s_j adapted
    towards 44% acceptance during the first half of the sweeps, then frozen)."""
    spec = model.spec
    discrete = spec.is_discrete
    scale = torch.ones(x.shape[1], dtype=torch.float64)  # start: the observed values' spread
    for j in range(x.shape[1]):
        v = x[~miss[:, j], j]
        if len(v) > 1 and float(v.std()) > 0:
            scale[j] = float(v.std())
    k = max(1, (spec.levels or 2) // 8) if discrete else 0
    cur, lp = x.clone(), _target(model, x)
    cols = torch.nonzero(miss.any(0)).flatten().tolist()
    for sweep in range(sweeps):
        for j in cols:
            rows = torch.nonzero(miss[:, j]).flatten()
            prop = cur[rows].clone()
            if discrete:
                step = torch.randint(1, k + 1, (len(rows),), generator=g) * (2 * torch.randint(0, 2, (len(rows),), generator=g) - 1)
                prop[:, j] += step.to(prop.dtype)
                ok = (prop[:, j] >= 0) & (prop[:, j] <= spec.levels - 1)
                prop[~ok, j] = cur[rows[~ok], j]
            else:
                prop[:, j] += float(scale[j]) * torch.randn(len(rows), generator=g, dtype=prop.dtype)
                ok = torch.ones(len(rows), dtype=torch.bool)
            lp_new = _target(model, prop)
            acc = ok & (torch.rand(len(rows), generator=g, dtype=torch.float64).log() < lp_new - lp[rows])
            cur[rows[acc]] = prop[acc]
            lp[rows[acc]] = lp_new[acc]
            if not discrete and sweep < sweeps // 2:
                scale[j] *= math.exp(float(acc.double().mean()) - 0.44)
    return cur


def _pseudo_gibbs(model: GenerativeModel, x: Tensor, miss: Tensor, g: torch.Generator, sweeps: int) -> Tensor:
    """Rezende et al. (2014) sec. 5: x_miss <- decode(encode(x)) restricted to the missing entries."""
    cur = x.clone()
    for _ in range(sweeps):
        rec = model.decode(model.encode(cur.reshape(len(cur), *model.spec.event_shape)))
        cur = torch.where(miss, rec.reshape(len(cur), -1).to(cur.dtype), x)
    return cur


def read_mask(mask: str, shape: tuple[int, ...], seed: int = 0) -> Tensor:
    """A missing-value mask of ``shape``: ``mcar:RATE`` draws one (each entry missing with
    probability RATE); otherwise a .npy file of booleans / 0-1 values (True = missing)."""
    if mask.startswith("mcar:"):
        rate = float(mask[5:])
        if not 0 < rate < 1:
            raise ValueError(f"--mask mcar:RATE needs 0 < RATE < 1, got {rate}")
        return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < rate
    import numpy as np

    m = torch.from_numpy(np.load(mask, allow_pickle=False))
    if m.numel() != math.prod(shape):
        raise ValueError(f"--mask {mask} has shape {tuple(m.shape)}; the data have shape {shape}")
    return m.reshape(shape).to(torch.bool)
