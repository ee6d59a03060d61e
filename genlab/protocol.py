"""The protocol every genlab model implements (see DESIGN.md).

A model is an ``nn.Module`` built from a `DataSpec` and a config dataclass. Public methods
(`log_prob`, `sample`, ...) validate their input and move between data space and the model
space of the model's `Preprocess`; private ones (`_log_prob`, `_sample`) do the maths in model
space. Optional capabilities are mixins checked with ``isinstance``.
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from .data.preprocess import Preprocess, default_preprocess
from .data.spec import DataSpec


class NotSupported(NotImplementedError):
    """A method that a family cannot honour; the message gives the reason."""


class Density(str, Enum):
    """What ``log_prob`` returns."""

    EXACT = "exact"  # log p(x)
    BOUND = "bound"  # a lower bound on log p(x) (ELBO, variational bound)
    UNNORMALIZED = "unnormalized"  # only -energy(x); log_prob raises NotSupported
    NONE = "none"  # no density (GAN, autoencoder)


@dataclass
class Estimate:
    """A mean over examples (or an estimate such as log Z) with its standard error and the number of examples used."""

    value: float
    stderr: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "stderr": self.stderr, "n": self.n}

    def __str__(self) -> str:
        return f"{self.value:.4f} ± {self.stderr:.4f} (n={self.n})"


@dataclass
class Batch:
    """What an objective sees: data-space examples, labels, and the randomness to use.

    Attributes:
        x: (batch, *event_shape) examples in data space.
        y: (batch,) int64 labels or None.
        generator: the source of every random draw in the step (dequantization, noise).
    """

    x: Tensor
    y: Tensor | None = None
    generator: torch.Generator | None = None


@dataclass
class Loss:
    """An objective's result: the scalar to minimise, figures to log, and whether a
    closed-form fit is finished (``done``)."""

    value: Tensor
    logs: dict[str, float] = field(default_factory=dict)
    done: bool = False


@dataclass
class Objective:
    """One thing the trainer optimizes, with its own optimizer.

    Attributes:
        name: shown in logs (``"nll"``, ``"critic"``, ``"generator"``, ``"em"``).
        parameters: what its optimizer updates; empty for closed-form / EM updates that the
            loss function applies itself (then nothing is back-propagated).
        loss: ``loss(batch) -> Loss``.
        every: step this objective on every ``every``-th trainer step (GAN ``n_critic``).
        full_batch: call once per epoch with the whole training set (EM, closed forms).
        lr: learning rate for this objective; ``None`` takes the trainer's.
        betas: Adam betas for this objective; ``None`` takes the trainer's.
    """

    name: str
    parameters: list[nn.Parameter]
    loss: Callable[[Batch], Loss]
    every: int = 1
    full_batch: bool = False
    lr: float | None = None
    betas: tuple[float, float] | None = None


class GenerativeModel(nn.Module):
    """Base class of every family.

    Subclasses set ``Config`` (a dataclass) and ``density``, implement `objectives`, `_sample`
    and (for EXACT / BOUND densities) `_log_prob`, and are registered with ``@register``.

    Class attributes for the capability table (``genlab list``): ``sampling`` and ``training``.
    """

    Config: ClassVar[type]
    density: ClassVar[Density] = Density.NONE
    sampling: ClassVar[str] = "fast"
    training: ClassVar[str] = "MLE"
    default_epochs: ClassVar[int] = 50
    default_train: ClassVar[dict[str, Any]] = {}  # trainer settings this family trains best with
    name: ClassVar[str] = ""

    def __init__(self, spec: DataSpec, config: Any):
        super().__init__()
        self.spec = spec
        self.config = config
        self.pre = self.make_preprocess(spec)

    # -- construction hooks -------------------------------------------------------------------
    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        """The data-space <-> model-space map; override for models with discrete likelihoods."""
        return default_preprocess(spec)

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """Data-dependent initialisation before training (statistics, k-means, stored points).

        Args:
            x: (n, *event_shape) training examples in data space; y: their labels.
            x_val: validation examples, for models that choose settings on them (KDE).
        """
        self.pre.fit(self.check_input(x))

    def objectives(self) -> list[Objective]:
        raise NotImplementedError

    # -- public API: validate, then compute in model space -------------------------------------
    def log_prob(self, x: Tensor | np.ndarray, *, condition: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """log p(x) per example in nats, in data space (a lower bound for BOUND densities and
        for dequantized discrete data).

        Args:
            x: (batch, *event_shape) or (batch, dim) examples in data space.
            condition: (batch,) class labels for `Conditional` models.
            generator: randomness for dequantization / Monte-Carlo bounds; ``None`` uses a
                fixed seed so that scores are reproducible.
        Returns:
            (batch,) log-probabilities.
        """
        if self.density in (Density.NONE, Density.UNNORMALIZED):
            raise NotSupported(f"{self.name}: density is {self.density.value}; "
                               f"log_prob is not defined for this family")
        x = self.check_input(x)
        condition = self._check_condition(condition, len(x))
        generator = generator if generator is not None else _fixed_generator(x.device)
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
        x = batch.x
        z, logdet = self.pre(x, batch.generator)
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
        for t in self.parameters():
            return t
        for t in self.buffers():
            if t.is_floating_point():
                return t
        return torch.zeros(())

    def _check_condition(self, condition: Tensor | None, n: int) -> Tensor | None:
        if condition is None:
            return None
        if not isinstance(self, Conditional):
            raise NotSupported(f"{self.name}: this family is not conditional; drop condition=")
        condition = torch.as_tensor(condition, dtype=torch.long, device=self._some_tensor().device)
        if condition.ndim == 0:
            condition = condition.expand(n)
        if condition.shape != (n,):
            raise ValueError(f"condition must have shape ({n},), got {tuple(condition.shape)}")
        k = self.spec.num_classes
        if k is not None and (condition.min() < 0 or condition.max() >= k):
            raise ValueError(f"condition labels must lie in 0..{k - 1}")
        return condition


def check_input(x: Tensor | np.ndarray, spec: DataSpec, like: Tensor | None = None) -> Tensor:
    """Validate examples against a spec: shape, dtype, finite values, discrete levels."""
    if isinstance(x, np.ndarray):
        if x.dtype == object or x.dtype.kind in "USO":
            raise ValueError(f"expected numeric data, got an array of dtype {x.dtype}; "
                             "convert strings to numbers first")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.is_complex():
        raise ValueError("expected real-valued data, got complex numbers")
    dtype = like.dtype if like is not None and like.is_floating_point() else torch.float32
    device = like.device if like is not None else x.device
    x = x.to(device=device, dtype=dtype)
    shape = tuple(spec.event_shape)
    if x.ndim == 0:
        raise ValueError(f"expected a batch of shape (batch, {', '.join(map(str, shape))}), got a scalar")
    if tuple(x.shape[1:]) != shape:
        if x[0].numel() == spec.dim and x.ndim >= 2:
            x = x.reshape(len(x), *shape)
        else:
            raise ValueError(f"expected shape (batch, {', '.join(map(str, shape))}) or (batch, {spec.dim}), "
                             f"got {tuple(x.shape)}; this model was built for {spec.dim} values per example")
    if len(x) == 0:
        raise ValueError("got an empty batch (0 examples)")
    lo, hi = (float(v) for v in torch.aminmax(x))  # one pass: NaN and +-Inf show in the extremes
    if not (math.isfinite(lo) and math.isfinite(hi)):
        rows = (~torch.isfinite(x)).reshape(len(x), -1).any(1).nonzero().flatten()
        raise ValueError(f"data contain NaN or Inf in {len(rows)} example(s), first at row {int(rows[0])}; "
                         "drop or impute them first (genlab impute fills missing values)")
    if spec.is_discrete:
        if lo < 0 or hi > spec.levels - 1 or not torch.equal(x, torch.round(x)):
            raise ValueError(f"{spec.kind.value} data must hold integers 0..{spec.levels - 1}; "
                             f"got values in [{lo:g}, {hi:g}]")
    return x


def _fixed_generator(device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(0)


class Latent:
    """Mixin: a latent space with ``encode(x) -> codes`` and ``decode(codes) -> x`` (data space)."""

    latent_dim: int

    def encode(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def decode(self, codes: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class Energy:
    """Mixin: an energy ``E(x)`` with ``p(x) ∝ exp(-E(x))``."""

    def energy(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class Partition(Energy):
    """Mixin: an `Energy` model whose normalizer ``Z = ∫ exp(-E(x)) dx`` (a sum for discrete
    states) can be computed or estimated, so that ``log p(x) = -E(x) - log Z`` is available even
    though ``log_prob`` refuses (their density is ``UNNORMALIZED``: ``Z`` is not free).

    ``log_partition(method="auto", steps=, chains=, generator=)`` returns ``(Estimate, method)``
    (`genlab.metrics.likelihood.Estimate`: ``value = log Z`` and its standard error) with method
    ``exact`` (enumeration), ``quadrature`` (a grid over a bounded support, low dimension) or
    ``ais`` (annealed importance sampling: ``Ẑ`` unbiased, so ``log Ẑ`` is low in expectation
    and a log-likelihood computed with it is *optimistic*). ``partition_method()`` says which
    one ``auto`` picks, so callers can skip an expensive estimate.
    """

    def partition_method(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def log_partition(self, method: str = "auto", *, steps: int | None = None, chains: int | None = None,
                      generator: torch.Generator | None = None) -> tuple[Any, str]:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def log_prob_estimate(self, x: Tensor, log_z: Any = None, **kw: Any) -> tuple[Tensor, str]:
        """``-energy(x) - log Z`` per example (float64, nats, data space) and how ``log Z`` was
        obtained; ``log_z`` reuses an earlier `log_partition` value (one per model, not per batch)."""
        method = "given"
        if log_z is None:
            log_z, method = self.log_partition(**kw)
        return -self.energy(x).double() - log_z.value, method


class Conditional:
    """Mixin: ``condition=`` class labels are honoured by ``sample`` and ``log_prob``.

    A family can be conditional while one of its instances is not (built without labels, e.g.
    ``vae --conditional false``): ``conditioned`` then says False and labels are not passed to it.
    """

    @property
    def conditioned(self) -> bool:
        """True when this instance takes labels (``condition=``)."""
        return True


def takes_labels(model: object) -> bool:
    """Whether ``model`` should be given labels: a `Conditional` family built with them."""
    return isinstance(model, Conditional) and model.conditioned


class Autoregressive:
    """Mixin: an exact density in known orders, ``p(z) = (1/K) sum_k prod_i p_k(z_{o_ki} | z_{o_k,<i})``
    (``K = 1`` except for order-agnostic ensembles), every conditional a distribution of the
    model's output ``head`` (``head.sample(params, generator, temperature)``,
    ``head.log_prob(z, params)``) over per-entry parameters. Tasks that need the chain rule
    entry by entry (ancestral imputation, entropy coding) use this, never the family's name."""

    def ar_orders(self) -> Tensor:  # pragma: no cover - interface
        """(K, D) int64: ``orders[k, i]`` is the flattened entry drawn i-th under ordering ``k``."""
        raise NotImplementedError

    def entry_params(self, z: Tensor, k: int = 0) -> Tensor:  # pragma: no cover - interface
        """Parameters of every ``p_k(z_d | entries before d in ordering k)``: z (batch, D)
        flattened model space -> (batch, D, n_params); row ``d`` reads only the earlier entries."""
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
    example, so conditionals (imputation) are closed form."""

    def mixture(self) -> tuple[Tensor, Tensor, Tensor]:  # pragma: no cover - interface
        """(log weights (K,), means (K, D), scale_tril (K, D, D)) in model space."""
        raise NotImplementedError


class Imputer:
    """Mixin: the family fills missing entries itself, exactly: ``impute(x, missing, method,
    generator)`` with ``method`` ``"mode"`` (posterior mode) or ``"sample"`` (posterior draw)."""

    def impute(self, x: Tensor, missing: Tensor, method: str = "mode",
               generator: torch.Generator | None = None) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


# -- the registry's store: a family declares itself with @register; registry.py finds them ----
_REGISTRY: dict[str, type] = {}


def register(name: str):
    """Class decorator: add a `GenerativeModel` subclass to the registry under ``name``."""

    def deco(cls: "type[GenerativeModel]") -> "type[GenerativeModel]":
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"family {name!r} is registered twice")
        if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
            raise TypeError(f"{cls.__name__}.Config must be a dataclass")
        if not isinstance(cls.density, Density):
            raise TypeError(f"{cls.__name__}.density must be a Density")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco
