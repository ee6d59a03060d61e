"""The protocol every genlab model implements (see DESIGN.md).

A model is an ``nn.Module`` built from a `DataSpec` and a config dataclass. Public methods
(`log_prob`, `sample`, ...) validate their input and move between data space and the model space
of its `Preprocess`; private ones (`_log_prob`, `_sample`) do the maths in model space. Optional
capabilities are mixins checked with ``isinstance``; a class that declares one honours it on every
instance, and class-level values (``density``, ``sampling``, ``data_kinds``) describe every instance.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from . import settings
from .taxonomy import check_row
from .data.preprocess import Preprocess, default_preprocess
from .data.spec import DataSpec, Kind
from .data.validate import check_input, check_labels  # noqa: F401  (check_input re-exported)
from .nn.distribution import DistributionFace


class NotSupported(NotImplementedError):
    """A method that a family cannot honour; the message gives the reason."""


class Density(str, Enum):
    """What ``log_prob`` returns. The density is that of the model space; dequantized discrete
    data (uniform or variational) make the data-space figure a bound: ``model.pre.lower_bound``."""

    EXACT = "exact"  # log p(x)
    BOUND = "bound"  # a lower bound on log p(x) (ELBO, variational bound)
    UNNORMALIZED = "unnormalized"  # only -energy(x); log_prob raises NotSupported
    NONE = "none"  # no density (GAN, autoencoder)


@dataclass
class Estimate:
    """A mean over examples (or an estimate such as log Z), its standard error and the examples used."""

    value: float
    stderr: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        """``{"value", "stderr", "n"}`` as plain JSON numbers."""
        return {"value": self.value, "stderr": self.stderr, "n": self.n}

    def __str__(self) -> str:
        return f"{self.value:.4f} ± {self.stderr:.4f} (n={self.n})"


@dataclass
class Batch:
    """What an objective sees: data-space examples ``x`` (batch, *event_shape), labels ``y``
    ((batch,) int64 or None) and ``generator``, the source of every random draw in the step."""

    x: Tensor
    y: Tensor | None = None
    generator: torch.Generator | None = None


@dataclass
class Loss:
    """An objective's result: the scalar to minimise, figures to log, whether a fit is ``done``."""

    value: Tensor
    logs: dict[str, float] = field(default_factory=dict)
    done: bool = False


@dataclass
class Objective:
    """One thing the trainer optimizes, with its own optimizer: ``name`` (in logs), ``parameters``
    (empty for closed-form / EM updates that ``loss`` applies itself), ``loss(batch) -> Loss``,
    stepped every ``every``-th step (GAN ``n_critic``), once per epoch on the whole training set
    if ``full_batch``; ``lr`` / ``betas`` (Adam) override the trainer's unless None."""

    name: str
    parameters: list[nn.Parameter]
    loss: Callable[[Batch], Loss]
    every: int = 1
    full_batch: bool = False
    lr: float | None = None
    betas: tuple[float, float] | None = None


class GenerativeModel(DistributionFace, nn.Module):
    """Base class of every family: subclasses set ``Config`` (a dataclass) and ``density``,
    implement `objectives`, `_sample` and (EXACT / BOUND) `_log_prob`, and register with
    ``@register``. ``genlab list`` shows ``sampling``, ``training`` and ``data_kinds``."""

    Config: ClassVar[type]
    density: ClassVar[Density] = Density.NONE
    data_kinds: ClassVar[frozenset[Kind]] = frozenset(Kind)  # what __init__ accepts (check_kind)
    sampling: ClassVar[str] = "fast"
    training: ClassVar[str] = "MLE"
    default_epochs: ClassVar[int] = 50
    default_train: ClassVar[dict[str, Any]] = {}  # trainer settings this family trains best with
    name: ClassVar[str] = ""
    in_default_compare: ClassVar[bool] = False  # stands for its taxonomy row in `genlab compare`'s default set
    taxonomy: ClassVar[str | None] = None  # its row of the textbook table (`genlab.taxonomy.ROWS`)
    compare_minutes: ClassVar[float] = 1.0  # training budget in `genlab compare` unless --budget is given

    def __init__(self, spec: DataSpec, config: Any):
        check_kind(type(self), spec)
        settings.validate(config, self.name)  # Literal choices, however the config was built
        super().__init__()
        self.spec = spec
        self.config = config
        self.pre = self.make_preprocess(spec)

    # -- construction hooks -------------------------------------------------------------------
    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        """The data-space <-> model-space map; override for models with discrete likelihoods."""
        return default_preprocess(spec)

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """Data-dependent initialisation before training (statistics, k-means, stored points) from
        data-space ``x`` (n, *event_shape), labels ``y`` and ``x_val`` (KDE chooses on it)."""
        self.pre.fit(self.check_input(x))

    def objectives(self) -> list[Objective]:
        """The losses the Trainer steps in order, each with its own optimizer (GANs: two)."""
        raise NotImplementedError

    # -- public API: validate, then compute in model space -------------------------------------
    def log_prob(self, x: Tensor | np.ndarray, *, condition: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """log p(x) per example in nats, in data space: (batch,) (a lower bound for BOUND densities
        and for dequantized discrete data). ``x``: (batch, *event_shape) or (batch, dim);
        ``condition``: (batch,) labels for `Conditional` models; ``generator``: randomness of
        dequantization / Monte-Carlo bounds (None: a fixed seed, so scores are reproducible)."""
        if self.density in (Density.NONE, Density.UNNORMALIZED):
            raise NotSupported(f"{self.name}: density is {self.density.value}; "
                               f"log_prob is not defined for this family")
        x = self.check_input(x)
        condition = self._check_condition(condition, len(x))
        generator = generator if generator is not None else torch.Generator(x.device).manual_seed(0)
        z, logdet = self.pre(x, generator)
        return self._log_prob(z, condition=condition, generator=generator) + logdet

    @torch.no_grad()
    def sample(self, n: int, *, condition: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` examples in data space: (n, *event_shape)."""
        if n < 1:
            raise ValueError(f"sample: n must be >= 1, got {n}")
        condition = self._check_condition(condition, n)
        z = self._sample(n, condition=condition, generator=generator)
        return self.pre.inverse(z)

    def nll_loss(self, batch: Batch) -> Loss:
        """Mean negative log-likelihood (nats, data space) of a batch: the MLE objective."""
        z, logdet = self.pre(batch.x, batch.generator)
        cond = batch.y if takes_labels(self) else None
        nll = -(self._log_prob(z, condition=cond, generator=batch.generator) + logdet).mean()
        return Loss(nll)

    def val_loss(self, x: Tensor, y: Tensor | None = None) -> float | None:
        """Validation figure for early stopping (lower is better): mean NLL in nats, or None."""
        if self.density not in (Density.EXACT, Density.BOUND):
            return None
        with torch.no_grad():
            cond = y if takes_labels(self) else None
            return float(-self.log_prob(x, condition=cond).mean())

    # -- private maths, in model space ----------------------------------------------------------
    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        raise NotSupported(f"{self.name}: no log_prob")

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    # -- validation ------------------------------------------------------------------------------
    def check_input(self, x: Tensor | np.ndarray) -> Tensor:
        """Return ``x`` as a float tensor of shape (batch, *event_shape) or raise ValueError."""
        return check_input(x, self.spec, like=self._some_tensor())

    def _some_tensor(self) -> Tensor:
        """A tensor that carries the model's dtype and device (parameters first)."""
        p = next(self.parameters(), None)
        return p if p is not None else next((t for t in self.buffers() if t.is_floating_point()), torch.zeros(()))

    def _check_condition(self, condition: Tensor | None, n: int) -> Tensor | None:
        if condition is not None and not isinstance(self, Conditional):
            raise NotSupported(f"{self.name}: this family is not conditional; drop condition=")
        return check_labels(condition, n, self.spec, self._some_tensor().device)


def check_kind(cls: type, spec: DataSpec) -> None:
    """Unless ``cls`` models ``spec.kind``, raise `NotSupported` naming the (registered) families that do."""
    if spec.kind not in cls.data_kinds:
        ok = ", ".join(k.value for k in Kind if k in cls.data_kinds)
        others = ", ".join(sorted(n for n, c in _REGISTRY.items() if spec.kind in c.data_kinds)) or "none"
        raise NotSupported(f"{cls.name or cls.__name__} does not model {spec.kind.value} data; it models {ok} "
                           f"data. Families for {spec.kind.value} data: {others}")


class Decoder:
    """Mixin: codes (``latent_dim`` values) decode to data space, ``decode(codes) -> x`` (a GAN)."""

    latent_dim: int

    def decode(self, codes: Tensor) -> Tensor:  # pragma: no cover - interface
        """Data-space examples (n, *event_shape) of codes (n, latent_dim)."""
        raise NotImplementedError


class Latent(Decoder):
    """Mixin: a `Decoder` with an encoder, ``encode(x) -> codes`` (data space in)."""

    def encode(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        """Codes of data-space examples ``x: (n, *event_shape)``: (n, latent_dim)."""
        raise NotImplementedError


class LatentVariable:
    """Mixin: ``p(x) = E_{p(c)} p(x | c)`` with an amortized posterior ``q(c | x)``, as pieces in
    model space, for what needs them (bits-back coding, AIS over codes, Metropolis-within-Gibbs):
    ``latent``, the code distribution (`genlab.objectives.latents`: ``sample(params, k, g)``,
    ``log_q(params, codes)``, ``log_prior(codes)``, ``kl``, ``prior_sample``, ``code_dim``);
    ``encoder_params(z, labels)``: (batch, *event_shape) -> posterior parameters (batch, n_params);
    ``decoder_output(codes, labels)``: (*lead, batch, code_dim) -> (*lead, batch, *event_shape),
    the location of ``p(x | c)`` of kind ``likelihood`` (``gaussian``, ``bernoulli`` logits, or
    ``logistic`` discretized to the levels on [-1, 1]; scales ``log_scale()``);
    ``decoder_log_lik(z, out)``: ``log p(z | c)``, (*lead, batch); ``labels(condition, n)``."""

    latent: Any
    likelihood: str

    def encoder_params(self, z: Tensor, labels: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def decoder_output(self, codes: Tensor, labels: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def decoder_log_lik(self, z: Tensor, out: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def log_scale(self) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class Bijective:
    """Mixin: a bijection of model space onto a N(0, I) base space: ``forward_and_log_det(z,
    condition=None) -> (u, log|det du/dz|: (batch,))``, ``inverse(u, condition=None) -> z`` (u as
    many values as z); iterative inverses are exact to the family's tolerance, and a log-det is
    exact unless the family documents an estimate (i-ResNet above 4 values per example)."""

    def forward_and_log_det(self, z: Tensor, condition: Tensor | None = None
                            ) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def inverse(self, u: Tensor, condition: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class Energy:
    """Mixin: an energy ``E(x)`` with ``p(x) ∝ exp(-E(x))``."""

    def energy(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        """``E(x)`` per data-space example: (n,); lower is more probable."""
        raise NotImplementedError


class Partition(Energy):
    """Mixin: an `Energy` model (density ``UNNORMALIZED``) with ``log_partition(method="auto", steps=,
    chains=, generator=) -> (Estimate of log Z, method)``: ``exact`` (enumeration), ``quadrature``
    (low-dimensional box) or ``ais`` (``log Ẑ`` low in expectation: a log-likelihood computed with
    it is *optimistic*); ``partition_method()`` says which one ``auto`` picks."""

    def partition_method(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def log_partition(self, method: str = "auto", *, steps: int | None = None, chains: int | None = None,
                      generator: torch.Generator | None = None) -> tuple[Any, str]:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def log_prob_estimate(self, x: Tensor, log_z: Any = None, **kw: Any) -> tuple[Tensor, str]:
        """``-energy(x) - log Z`` (float64, nats, data space) and how ``log Z`` was obtained (an
        earlier `log_partition` value ``log_z`` is reused)."""
        method = "given"
        if log_z is None:
            log_z, method = self.log_partition(**kw)
        return -self.energy(x).double() - log_z.value, method


class Conditional:
    """Mixin: ``condition=`` labels are honoured by ``sample`` and ``log_prob`` (``conditioned`` is
    False for an instance built without labels: ``vae --conditional false``)."""

    @property
    def conditioned(self) -> bool:
        """Whether this instance takes labels (``condition=``); False when built without them."""
        return True


def takes_labels(model: object) -> bool:
    """Whether ``model`` takes labels: a `Conditional` family built with them."""
    return isinstance(model, Conditional) and model.conditioned


class Autoregressive:
    """Mixin: an exact density in known orders, ``p(z) = (1/K) sum_k prod_i p_k(z_{o_ki} | z_{o_k,<i})``
    (``K = 1`` except for order-agnostic ensembles), every conditional a distribution of the
    model's output ``head`` (``head.sample(params, generator, temperature)``,
    ``head.log_prob(z, params)``) over per-entry parameters; ``ar_orders()`` (K, D) int64:
    ``orders[k, i]`` is the flattened entry drawn i-th under ordering ``k``."""

    def ar_orders(self) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def entry_params(self, z: Tensor, k: int = 0) -> Tensor:  # pragma: no cover - interface
        """Parameters of every ``p_k(z_d | entries before d in ordering k)``: z (batch, D)
        flattened model space -> (batch, D, n_params); row ``d`` reads only the earlier entries."""
        raise NotImplementedError


class DiscreteChainRule:
    """Mixin: exact probabilities of discrete data (levels) in a known order, ``P(x) = prod_i
    P(x_{o_i} | x_{o_<i})`` (a Bayesian network's CPT rows), for entropy coding entry by entry:
    ``chain_order()`` lists the flattened entries so that each conditional reads only earlier ones;
    ``chain_conditional(partial, d)``: (n, D) int64 levels -> ``P(x_d = k | earlier)``, (n, levels)."""

    def chain_order(self) -> list[int]:  # pragma: no cover - interface
        raise NotImplementedError

    def chain_conditional(self, partial: np.ndarray, d: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class Diffusion:
    """Mixin: a Gaussian diffusion model with a ``schedule`` (`genlab.samplers.diffusion.NoiseSchedule`)
    and a noise predictor ``eps_fn(condition, n, device, guidance=0.0)`` returning
    ``eps(x_t, t)`` on model-space ``x_t``; ``clip`` ((low, high) or None) bounds predicted ``x_0``."""

    def eps_fn(self, condition: Tensor | None, n: int, device: torch.device,
               guidance: float = 0.0):  # pragma: no cover - interface
        raise NotImplementedError


class GaussianMixtureForm:
    """Mixin: the model-space density is a mixture of full-covariance Gaussians over the flattened
    example, so conditionals (imputation) are closed form: ``mixture()`` gives (log weights (K,),
    means (K, D), scale_tril (K, D, D)) in model space."""

    def mixture(self) -> tuple[Tensor, Tensor, Tensor]:  # pragma: no cover - interface
        """(log weights (K,), means (K, D), scale_tril (K, D, D)) of the model-space mixture."""
        raise NotImplementedError


class Imputer:
    """Mixin: the family fills missing entries itself, exactly: ``impute(x, missing, method,
    generator)`` with ``method`` ``"mode"`` (posterior mode) or ``"sample"`` (posterior draw)."""

    def impute(self, x: Tensor, missing: Tensor, method: str = "mode",
               generator: torch.Generator | None = None) -> Tensor:  # pragma: no cover - interface
        """``x`` (n, *event_shape) with the entries where ``missing`` is True filled in (data space)."""
        raise NotImplementedError


class Translator:
    """Mixin: ``translate(inputs, direction=None)`` maps data-space images (n, C, H, W) to images of
    the model's spec; ``directions`` names the ways it can translate (the first is the default)."""

    directions: tuple[str, ...] = ("forward",)

    def translate(self, inputs: Tensor, direction: str | None = None) -> Tensor:  # pragma: no cover
        """Images of the model's spec translated from ``inputs`` along ``direction``."""
        raise NotImplementedError


_REGISTRY: dict[str, type] = {}  # the registry's store: families declare themselves with @register


def register(name: str):
    """Class decorator: add a `GenerativeModel` subclass to the registry under ``name``."""

    def deco(cls: "type[GenerativeModel]") -> "type[GenerativeModel]":
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"family {name!r} is registered twice")
        if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
            raise TypeError(f"{cls.__name__}.Config must be a dataclass")
        if not isinstance(cls.density, Density) or not cls.data_kinds <= set(Kind):
            raise TypeError(f"{cls.__name__}: density must be a Density and data_kinds a set of Kind")
        check_row(cls.taxonomy, cls.__name__)
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco
