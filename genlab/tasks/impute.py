"""Missing-data imputation: draws from p(missing | observed) under a trained model.

`impute(model, x, mask, n_draws, generator)` picks the method from what the model offers
(`method_for`; capabilities, never family names):

* ``exact-gaussian``: Gaussian and Gaussian-mixture densities. Per row, the conditional given the
  observed entries is a mixture with responsibilities ``r_k ∝ w_k N(z_o; mu_ko, S_koo)`` and
  components ``N(mu_km + S_kmo S_koo^-1 (z_o - mu_ko), S_kmm - S_kmo S_koo^-1 S_kom)`` (Bishop
  2006, eqs. 2.81-2.82), in the model space of the model's preprocessing.
* ``model``: families with their own exact ``impute(x, missing, method, generator)`` (bayesnet).
* ``repaint``: Gaussian diffusion models, RePaint conditioning (Lugmayr et al. 2022;
  `impute_diffusion`), optionally with resampling (``jump``, ``resample``).
* ``ancestral``: autoregressive models, for rows whose missing entries come last in the model's
  order: exact draws (`impute_ar`). Other rows fall back to ``mcmc``; the method is then
  ``ancestral+mcmc`` (or ``mcmc`` when no row qualifies), and ``info["note"]`` says how many.
* ``mwg`` (default for VAEs) / ``pseudo-gibbs``: Metropolis-within-Gibbs with the encoder as
  proposal (Mattei & Frellsen 2018) / sampling pseudo-Gibbs (Rezende et al. 2014, sec. 5);
  `impute_vae`.
* ``mcmc``: other exact or bound densities and energies: Metropolis-within-Gibbs on ``log p``
  (or the bound, or ``-E``), one coordinate at a time (`impute_mcmc`).
* ``projection``: latent models without a likelihood (autoencoders): ``decode(encode(x))``
  iterated on the missing entries; deterministic, so draws differ only by their start.

Shapes: ``x`` and ``mask`` are (n, *event_shape) (or (n, D)); ``mask`` is True where missing.
Returns (n_draws, n, *event_shape) in data space, observed entries copied from ``x``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..protocol import Density, Energy, GaussianMixtureForm, GenerativeModel, Imputer, Latent, NotSupported
from .impute_ar import ancestral, ar_view, missing_last
from .impute_diffusion import is_diffusion, repaint
from .impute_mcmc import mcmc, projection, start
from .impute_vae import decodes_entrywise, latent_chain

METHODS = ("exact-gaussian", "model", "repaint", "ancestral", "ancestral+mcmc", "mwg", "pseudo-gibbs",
           "mcmc", "projection")


def _check(model: GenerativeModel, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    x = torch.as_tensor(x)
    mask = torch.as_tensor(mask).to(torch.bool)
    if mask.shape != x.shape and mask.reshape(len(mask), -1).shape != x.reshape(len(x), -1).shape:
        raise ValueError(f"mask must have the shape of x {tuple(x.shape)}, got {tuple(mask.shape)}")
    mask = mask.reshape(x.shape)
    x = torch.where(mask, torch.zeros((), dtype=x.dtype), x)  # missing values (NaN too) ignored
    return model.check_input(x).reshape(len(x), -1), mask.reshape(len(x), -1)


def _has_density(model: GenerativeModel) -> bool:
    return model.density in (Density.EXACT, Density.BOUND) or (
        model.density is Density.UNNORMALIZED and isinstance(model, Energy))


def method_for(model: GenerativeModel, mask: Tensor | None = None) -> str:
    """The imputation method ``impute`` uses for ``model`` (and ``mask``, which decides between
    ``ancestral``, ``ancestral+mcmc`` and ``mcmc`` for autoregressive models; without a mask
    they report ``ancestral+mcmc``), or raise `NotSupported`."""
    if isinstance(model, GaussianMixtureForm):
        return "exact-gaussian"
    if isinstance(model, Imputer):
        return "model"
    if is_diffusion(model):
        return "repaint"
    if decodes_entrywise(model):
        return "mwg"
    if model.density is Density.EXACT and ar_view(model) is not None:
        if mask is None:
            return "ancestral+mcmc"
        last = missing_last(ar_view(model)[0].cpu(), torch.as_tensor(mask).reshape(len(mask), -1).bool().cpu())
        return "ancestral" if bool(last.all()) else "ancestral+mcmc" if bool(last.any()) else "mcmc"
    if _has_density(model):
        return "mcmc"
    if isinstance(model, Latent):
        return "projection"
    raise NotSupported(f"{model.name}: density is '{model.density.value}' and it has no latent space, so "
                       "p(missing | observed) is out of reach; use a family with a likelihood or an encoder")


def _require(method: str, model: GenerativeModel) -> None:
    ok = {"exact-gaussian": isinstance(model, GaussianMixtureForm), "model": isinstance(model, Imputer),
          "repaint": is_diffusion(model), "ancestral": ar_view(model) is not None,
          "ancestral+mcmc": ar_view(model) is not None, "mwg": decodes_entrywise(model),
          "pseudo-gibbs": decodes_entrywise(model),
          "mcmc": _has_density(model), "projection": isinstance(model, Latent)}
    if method not in ok:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if not ok[method]:
        raise NotSupported(f"{model.name}: imputation method {method!r} needs a capability this model lacks "
                           f"(see genlab.tasks.impute); its own method is {method_for(model)!r}")


def impute(model: GenerativeModel, x: Tensor, mask: Tensor, n_draws: int = 5,
           generator: torch.Generator | None = None, *, sweeps: int | None = None, method: str | None = None,
           steps: int | None = None, jump: int = 1, resample: int = 1, info: dict | None = None) -> Tensor:
    """Draws of the missing entries (see the module docstring): (n_draws, n, *event_shape).

    Args:
        sweeps: MCMC / Gibbs passes over the missing coordinates (mcmc, mwg, pseudo-gibbs,
            projection). None: 200 for mwg (a Metropolis step over the codes rejects many of
            its proposals, so it needs more sweeps than the others; bench/README.md), 20 for the others.
        method: force one of `METHODS` instead of `method_for`'s choice.
        steps, jump, resample: RePaint's respaced chain length (None: the model's
            ``sample_steps``) and resampling schedule (`impute_diffusion.repaint_path`).
        info: a dict to receive ``method``, ``note`` and (mwg / pseudo-gibbs) ``acceptance``.
    """
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    xf, miss = _check(model, x, mask)
    method = method or method_for(model, miss)
    _require(method, model)
    sweeps = sweeps if sweeps is not None else 200 if method == "mwg" else 20
    info = {} if info is None else info
    info.update(method=method, note="")
    with torch.no_grad():
        if method == "exact-gaussian":
            out = torch.stack([_exact(model, xf, miss, g) for _ in range(n_draws)])
        elif method == "model":
            shape = (len(xf), *model.spec.event_shape)
            out = torch.stack([model.impute(xf.reshape(shape), miss.reshape(shape), method="sample", generator=g)
                               .reshape(len(xf), -1).to(xf.dtype) for _ in range(n_draws)])
        else:
            rows, m = xf.repeat(n_draws, 1), miss.repeat(n_draws, 1)
            out = _chain(model, method, start(model, rows, m, g), m, g, sweeps, steps, jump, resample, info)
            out = out.reshape(n_draws, len(xf), -1)
    out = torch.where(miss, out, xf)
    return out.reshape(n_draws, len(xf), *model.spec.event_shape)


def _model_space(model: GenerativeModel, x: Tensor, g: torch.Generator) -> Tensor:
    return model.pre(x.reshape(len(x), *model.spec.event_shape), g)[0].reshape(len(x), -1)


def _data_space(model: GenerativeModel, z: Tensor) -> Tensor:
    return model.pre.inverse(z.reshape(len(z), *model.spec.event_shape)).reshape(len(z), -1)


def _chain(model, method, x, miss, g, sweeps, steps, jump, resample, info) -> Tensor:
    """The sampling methods on rows ``x`` (n, D) data space, started at `start`'s fill."""
    if method == "mcmc":
        return mcmc(model, x, miss, g, sweeps)
    if method == "projection":
        return projection(model, x, miss, g, sweeps)
    if method == "repaint":
        return _data_space(model, repaint(model, _model_space(model, x, g), miss, g, steps, jump, resample))
    if method in ("mwg", "pseudo-gibbs"):
        z, rate = latent_chain(model, _model_space(model, x, g), miss, g, sweeps, metropolis=method == "mwg")
        info["acceptance"] = rate
        return _data_space(model, z)
    # ancestral (+ mcmc for the rows whose missing entries do not come last)
    last = missing_last(ar_view(model)[0].cpu(), miss.cpu()).to(x.device)
    if method == "ancestral" and not bool(last.all()):
        raise ValueError(f"method='ancestral' needs the missing entries of every row to come last in the "
                         f"model's order; {int((~last).sum())} of {len(last)} rows do not. Use method=None "
                         "(ancestral where possible, MCMC for the rest) or method='mcmc'")
    out = x.clone()
    if bool(last.any()):
        z = ancestral(model, _model_space(model, x[last], g), miss[last], g)
        out[last] = _data_space(model, z).to(x.dtype)
    if not bool(last.all()):
        out[~last] = mcmc(model, x[~last], miss[~last], g, sweeps)
    info["note"] = (f"{int(last.sum())} of {len(last)} rows (draws included) have their missing entries last in "
                    f"the model's order: exact ancestral draws; {int((~last).sum())} by Metropolis-within-Gibbs")
    return out


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
