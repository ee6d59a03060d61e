"""Restricted Boltzmann machine (Smolensky 1986; Hinton 2002) with Bernoulli, level-valued or
Gaussian visible units, trained by contrastive divergence CD-k (Hinton 2002) or persistent CD
(Tieleman 2008), sampled by block Gibbs.

Energies, in model space (flattened ``v: (D,)``, ``h in {0,1}^H``):

* ``bernoulli`` (binary data): ``E(v, h) = -b.v - c.h - v.W.h``.
* ``levels`` (discrete data with ``L`` grey levels, the default there): each visible unit takes
  one of the data's own levels ``0 .. L-1``, ``E(v, h) = -sum_i b[i, v_i] - c.h - m(v).W.h`` with
  ``m(v) = v / (L - 1)`` in ``[0, 1]``: an exponential-family harmonium (Welling, Rosen-Zvi &
  Hinton 2005) whose visible conditional is ``p(v_i = k | h) ∝ exp(b[i, k] + (k / (L-1)) (W h)_i)``
  (free level biases: any base measure, e.g. most mass at black and white; the hidden units tilt
  it linearly in the intensity, as Hinton's digit RBMs read intensities as probabilities). The
  model is a distribution over the data's levels themselves, so samples are level images and
  ``-F(v) - log Z`` is an exact log-probability (no dequantization bound). Binary data is the
  case ``L = 2``.
* ``gaussian`` (continuous data): ``|v - b|^2 / 2 - c.h - v.W.h`` (unit variance, standardized).

The free energy is ``F(v) = -(visible term) - sum_j softplus(c_j + (phi(v) W)_j)``.

Density choice (documented): ``density = UNNORMALIZED``, so ``log_prob`` raises `NotSupported`
as the protocol says; the normalized figure comes from `log_prob_estimate`, which subtracts a
``log Z`` that is exact (enumeration of the 2^H hidden states) when ``H <= exact_max_hidden``
and otherwise the AIS estimate of Salakhutdinov & Murray (2008), and returns which one it used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from ..data.preprocess import Preprocess, default_preprocess
from ..data.spec import DataSpec, Kind
from ..samplers.ais import rbm_ais
from ..samplers.ais_levels import draw_levels, level_values, levels_rbm_ais, pick
from ..protocol import Estimate
from ..protocol import register, Batch, Density, GenerativeModel, Latent, Loss, NotSupported, Objective, Partition
from ..samplers.gibbs import block_gibbs


@dataclass
class RBMConfig:
    hidden: int = field(default=256, metadata={"help": "number of binary hidden units H"})
    visible: Literal["auto", "bernoulli", "levels", "gaussian"] = field(default="auto", metadata={
        "help": "auto | bernoulli | levels | gaussian (auto: bernoulli for binary data, levels for "
                "discrete data of at most 64 levels, gaussian otherwise)"})
    k: int = field(default=1, metadata={"help": "Gibbs steps of CD-k / PCD-k per update"})
    persistent: bool = field(default=True, metadata={"help": "persistent CD (Tieleman 2008) instead of CD-k"})
    chains: int = field(default=100, metadata={"help": "persistent fantasy chains"})
    sample_steps: int = field(default=1000, metadata={"help": "block-Gibbs steps per call to sample()"})
    exact_max_hidden: int = field(default=20, metadata={
        "help": "compute log Z exactly (2^H hidden states) up to this many hidden units; AIS above"})
    ais_betas: int = field(default=10_000, metadata={"help": "AIS intermediate distributions"})
    ais_runs: int = field(default=100, metadata={"help": "AIS chains"})
    init_std: float = field(default=0.01, metadata={"help": "std of the initial weights"})
    chain_seed: int = field(default=0, metadata={"help": "seed of the fantasy chains' initial states"})
    validate: bool = field(default=True, metadata={
        "help": "score the held-out NLL after every epoch (log Z exact or by AIS) so that the trainer keeps "
                "the best epoch's weights; false: keep the last epoch's"})
    val_ais_steps: int = field(default=200, metadata={"min": 1, "help": "validation: AIS steps for log Z (when not exact)"})
    val_ais_runs: int = field(default=16, metadata={"min": 1, "help": "validation: AIS chains for log Z (when not exact)"})
    renamed: ClassVar[dict[str, str]] = {"seed": "chain_seed"}  # its name in runs saved before the rename
    added: ClassVar[dict[str, Any]] = {"validate": False}  # runs saved before validation kept the last epoch


# Level units hold a bias per entry and level, and every Gibbs sweep and AIS step draws from D x L
# probabilities: with 256 levels on 28x28 images, evaluating one rbm took over 11 minutes. Above this
# many levels `auto` keeps Gaussian units (standardized values), as before level units existed.
MAX_AUTO_LEVELS = 64


def _units(spec: DataSpec, visible: str) -> str:
    """The visible units that ``visible`` resolves to on ``spec`` (refusing mismatches)."""
    if visible == "auto":
        if spec.kind is Kind.DISCRETE and (spec.levels or 0) > MAX_AUTO_LEVELS:
            return "gaussian"
        return {Kind.BINARY: "bernoulli", Kind.DISCRETE: "levels"}.get(spec.kind, "gaussian")
    if visible == "bernoulli" and spec.kind is not Kind.BINARY:
        raise ValueError("rbm.visible='bernoulli' needs binary (0/1) data; binarize it or use 'levels' or 'gaussian'")
    if visible == "levels" and not (spec.is_discrete and (spec.levels or 0) >= 2):
        raise ValueError("rbm.visible='levels' needs discrete data with at least 2 levels; use 'gaussian'")
    return visible


@register("rbm")
class RBM(GenerativeModel, Partition, Latent):
    """Restricted Boltzmann machine (Bernoulli, level-valued or Gaussian visible), CD-k / PCD, AIS log Z.

    Parameters ``W`` (D, H), ``b`` (D,) or (D, L) for level units, ``c`` (H,); buffers ``chains``
    (fantasy particles, model space) and ``base`` (the AIS base model's visible biases / means)."""
    in_default_compare = True  # stands for its row in `genlab compare`'s default set
    taxonomy = "undirected graphical model"

    Config = RBMConfig
    density = Density.UNNORMALIZED
    data_kinds = frozenset({Kind.CONTINUOUS, Kind.DISCRETE, Kind.BINARY})  # ordered values
    sampling = "slow, block Gibbs"
    training = "CD-k / PCD"
    # ~1,500 PCD steps (65 epochs of 23 batches on digits' 1,437 training images), lr decayed to 0
    # by a cosine so that the fantasy chains end near equilibrium of the final weights (with a
    # constant lr they chase a moving model and sample() falls into one mode); no early stopping
    # (the cosine must finish), but the best validated epoch is kept (`val_loss`)
    default_epochs = 65
    default_train = {"lr": 1e-2, "lr_schedule": "cosine", "batch_size": 64, "patience": None}

    def __init__(self, spec: DataSpec, config: RBMConfig | None = None):
        config = config or RBMConfig()
        self.units = _units(spec, config.visible)
        self.gaussian = self.units == "gaussian"
        super().__init__(spec, config)
        if config.hidden < 1 or config.k < 1 or config.chains < 1 or config.sample_steps < 1:
            raise ValueError("rbm: hidden, k, chains and sample_steps must be >= 1")
        D, H = spec.dim, config.hidden
        self.W = nn.Parameter(config.init_std * torch.randn(D, H))
        self._make_visible_params()
        self.c = nn.Parameter(torch.zeros(H))
        self.register_buffer("chains", torch.zeros(config.chains, D))

    def _make_visible_params(self) -> None:
        shape = (self.spec.dim, self.spec.levels) if self.units == "levels" else (self.spec.dim,)
        self.b = nn.Parameter(torch.zeros(shape))
        self.register_buffer("base", torch.zeros(shape))

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        # bernoulli and level units model the data's own values: no map, no dequantization
        return default_preprocess(spec) if self.gaussian else Preprocess()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a run saved when visible='auto' meant Gaussian units on discrete data has a 1-D `b` and the
        # standardization's buffers: load it as the Gaussian RBM it is
        b = state_dict.get(prefix + "b")
        if self.units == "levels" and self.config.visible == "auto" and b is not None and b.ndim == 1:
            self.units, self.gaussian = "gaussian", True
            self._make_visible_params()
            self.pre = default_preprocess(self.spec)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """Base rates (Hinton 2010, sec. 8.1) as visible biases and AIS base; chains start at data."""
        super().setup(x, y, x_val)
        g = torch.Generator(device=x.device).manual_seed(self.config.chain_seed)
        z = self.pre(self.check_input(x), g)[0].reshape(len(x), -1)
        with torch.no_grad():
            if self.gaussian:
                self.base.copy_(z.mean(0))
            elif self.units == "levels":  # log frequency of each level, smoothed by half a count
                counts = nn.functional.one_hot(z.long(), self.spec.levels).sum(0).to(self.base.dtype)
                self.base.copy_((counts + 0.5).log() - math.log(len(z) + 0.5 * self.spec.levels))
            else:
                p = z.mean(0).clamp(1e-3, 1 - 1e-3)
                self.base.copy_((p / (1 - p)).log())
            self.b.copy_(self.base)
            idx = torch.randint(len(z), (self.config.chains,), generator=g, device=z.device)
            self.chains.copy_(z[idx])

    # -- conditionals and energies (model space, flattened) -------------------------------------
    def _phi(self, v: Tensor) -> Tensor:
        """What the hidden units see of ``v``: the intensity ``v / (L-1)`` for level units."""
        return v / (self.spec.levels - 1) if self.units == "levels" else v

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) = -log sum_h exp(-E(v, h)): (n, D) -> (n,)."""
        hidden = softplus(self._phi(v) @ self.W + self.c).sum(1)
        if self.gaussian:
            vis = 0.5 * (v - self.b).square().sum(1)
        elif self.units == "levels":
            vis = -pick(self.b, v)
        else:
            vis = -(v @ self.b)
        return vis - hidden

    def sample_h(self, v: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return torch.bernoulli(torch.sigmoid(self._phi(v) @ self.W + self.c), generator=generator)

    def sample_v(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        mean = h @ self.W.T
        if self.units == "levels":
            m = level_values(self.spec.levels, mean.dtype, mean.device)
            return draw_levels(self.b + mean.unsqueeze(-1) * m, generator).to(mean.dtype)
        mean = mean + self.b
        if self.gaussian:
            return mean + torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return torch.bernoulli(torch.sigmoid(mean), generator=generator)

    def gibbs(self, v: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        """``steps`` block-Gibbs steps from model-space ``v: (n, D)``."""
        return block_gibbs(v, self.sample_h, self.sample_v, steps, generator)[0]

    # -- training -------------------------------------------------------------------------------
    def cd_loss(self, batch: Batch) -> Loss:
        """Surrogate ``mean F(v_data) - mean F(v_model)`` whose gradient is the CD / PCD estimate
        of the negative log-likelihood gradient (the negative samples are not differentiated)."""
        z = self.pre(batch.x, batch.generator)[0].reshape(len(batch.x), -1)
        with torch.no_grad():
            start = self.chains if self.config.persistent else z
            neg = self.gibbs(start, self.config.k, batch.generator)
            if self.config.persistent:
                self.chains.copy_(neg)
        pos_f = self.free_energy(z).mean()
        loss = pos_f - self.free_energy(neg).mean()
        with torch.no_grad():  # one-step reconstruction error: a cheap progress figure
            recon = (self.sample_v(self.sample_h(z, batch.generator)) - z).square().mean()
        return Loss(loss, {"free_energy": float(pos_f.detach()), "recon": float(recon)})

    def objectives(self) -> list[Objective]:
        return [Objective("cd", list(self.parameters()), self.cd_loss)]

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        W = self.W
        if self.gaussian:
            v = self.base + torch.randn(n, self.spec.dim, generator=generator, dtype=W.dtype, device=W.device)
        elif self.units == "levels":
            v = draw_levels(self.base.expand(n, -1, -1), generator).to(W.dtype)
        else:
            v = torch.bernoulli(torch.sigmoid(self.base).expand(n, -1), generator=generator)
        v = self.gibbs(v, self.config.sample_steps, generator)  # draws, not means: samples follow the model
        return v.reshape(n, *self.spec.event_shape)

    @torch.no_grad()
    def val_loss(self, x: Tensor, y: Tensor | None = None) -> float | None:
        """Held-out NLL in nats, ``mean F(v) + log Z``, with log Z exact (``H <= exact_max_hidden``) or
        by AIS (``val_ais_steps`` steps, ``val_ais_runs`` chains, a fixed seed so that epochs are
        compared on the same draws); None when ``validate`` is off. The trainer keeps the weights of
        the epoch where it is lowest: PCD with a large learning rate can leave a model worse than
        one of its earlier epochs."""
        if not self.config.validate:
            return None
        g = torch.Generator(device=self.W.device).manual_seed(self.config.chain_seed)
        log_z, _ = self.log_partition(steps=self.config.val_ais_steps, chains=self.config.val_ais_runs, generator=g)
        return float(self.energy(x).double().mean()) + log_z.value

    # -- Latent: hidden-unit probabilities ------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.config.hidden

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Codes ``P(h_j = 1 | v) = sigmoid(c + phi(v) W)`` (the usual RBM features, Hinton 2010
        sec. 16): x: (batch, *event_shape) data space -> (batch, H); dequantization noise has a fixed seed."""
        x = self.check_input(x)
        z, _ = self.pre(x, torch.Generator(device=x.device).manual_seed(0))
        return torch.sigmoid(self._phi(z.reshape(len(x), -1)) @ self.W + self.c)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Mean visible units ``E[v | h]`` (Gaussian: ``b + W h``; Bernoulli: its sigmoid; levels:
        the mean level, not rounded) for codes (batch, H) in [0, 1] (mean field) -> (batch,
        *event_shape) in data space."""
        W = self.W
        h = torch.as_tensor(codes, dtype=W.dtype, device=W.device).reshape(-1, self.config.hidden)
        mean = h @ W.T
        if self.units == "levels":
            m = level_values(self.spec.levels, W.dtype, W.device)
            p = torch.softmax(self.b + mean.unsqueeze(-1) * m, -1)
            v = p @ torch.arange(self.spec.levels, dtype=W.dtype, device=W.device)
        else:
            v = mean + self.b if self.gaussian else torch.sigmoid(mean + self.b)
        return self.pre.inverse(v.reshape(len(h), *self.spec.event_shape))

    # -- normalization --------------------------------------------------------------------------
    @torch.no_grad()
    def log_z_exact(self) -> float:
        """log Z by enumerating the 2^H hidden configurations (H <= exact_max_hidden), in float64.

        Bernoulli: ``log Z = logsumexp_h [c.h + sum_i softplus(b_i + (W h)_i)]``; levels:
        ``logsumexp_h [c.h + sum_i logsumexp_k (b[i, k] + (k/(L-1)) (W h)_i)]``;
        Gaussian: ``D/2 log 2 pi + logsumexp_h [c.h + |b + W h|^2 / 2 - |b|^2 / 2]``.
        """
        H = self.config.hidden
        if H > self.config.exact_max_hidden:
            raise NotSupported(f"rbm: exact log Z enumerates 2^{H} hidden states; allowed up to "
                               f"2^{self.config.exact_max_hidden} (raise exact_max_hidden, or use AIS)")
        W, b, c = (t.detach().double() for t in (self.W, self.b, self.c))
        bits = 2 ** torch.arange(H, device=W.device)
        chunk = 1 << (14 if self.units != "levels" else 10)
        parts = []
        for start in range(0, 2 ** H, chunk):
            idx = torch.arange(start, min(start + chunk, 2 ** H), device=W.device)
            h = ((idx[:, None] & bits) > 0).double()
            if self.units == "levels":
                m = level_values(self.spec.levels, W.dtype, W.device)
                parts.append(h @ c + torch.logsumexp(b + (h @ W.T).unsqueeze(-1) * m, -1).sum(1))
                continue
            act = h @ W.T + b
            if self.gaussian:
                parts.append(h @ c + 0.5 * act.square().sum(1) - 0.5 * b.square().sum())
            else:
                parts.append(h @ c + softplus(act).sum(1))
        log_z = float(torch.logsumexp(torch.cat(parts), 0))
        return log_z + (0.5 * self.spec.dim * math.log(2 * math.pi) if self.gaussian else 0.0)

    def partition_method(self) -> str:
        return "exact" if self.config.hidden <= self.config.exact_max_hidden else "ais"

    @torch.no_grad()
    def log_partition(self, method: str = "auto", *, steps: int | None = None, chains: int | None = None,
                      generator: torch.Generator | None = None) -> tuple[Estimate, str]:
        """``(log Z, method)``: ``exact`` (stderr 0) or ``ais`` (``steps`` intermediate
        distributions, default ``ais_betas``; ``chains`` runs, default ``ais_runs``; with its
        standard error)."""
        if method == "auto":
            method = self.partition_method()
        if method == "exact":
            return Estimate(self.log_z_exact(), 0.0, 0), "exact"
        if method != "ais":
            raise ValueError(f"log_partition: method must be auto, exact or ais, got {method!r}")
        W, b, c, base = (t.detach().double() for t in (self.W, self.b, self.c, self.base))
        g = generator if generator is not None else torch.Generator(device=W.device).manual_seed(0)
        n_betas, n_runs = steps or self.config.ais_betas, chains or self.config.ais_runs
        if self.units == "levels":
            return levels_rbm_ais(W, b, c, base, n_betas=n_betas, n_runs=n_runs, generator=g), "ais"
        return rbm_ais(W, b, c, base, gaussian=self.gaussian, n_betas=n_betas, n_runs=n_runs, generator=g), "ais"

    def energy(self, x: Tensor) -> Tensor:
        """Data-space energy ``F(f(x)) - log|det df/dx|`` (a fixed dequantization draw, Gaussian
        units; Bernoulli and level units score the data's own values): (n,)."""
        x = self.check_input(x)
        z, logdet = self.pre(x, torch.Generator(device=x.device).manual_seed(0))
        return self.free_energy(z.reshape(len(x), -1)) - logdet
