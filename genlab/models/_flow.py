"""What the flow families (glow, maf, nsf, realnvp) share: the base distribution, class
conditioning, dequantization, data-dependent initialisation, the `Latent` face and the `Bijective`
map (``forward_and_log_det`` / ``inverse`` in model space).

The density is EXACT for every instance (``genlab list`` and ``genlab eval`` say so): it is the
flow's exact density over model space. With discrete data, dequantization (uniform, or Flow++'s
variational q(u|x)) makes ``log_prob`` a lower bound on the discrete log-probability; the
preprocessing reports that (``model.pre.lower_bound``), and evaluation labels the NLL an upper bound.

A subclass builds ``self.layers`` (an ``nn.ModuleList`` of invertible layers, see
`genlab.nn.flows`) or overrides `_flow` / `_flow_inverse`. In model space,
``log p(z | y) = log N(f(z, e_y); 0, I) + log|det df/dz|`` (Rezende & Mohamed 2015; Dinh et al.
2017, Eq. 3), where ``e_y`` is a learned label embedding.

Conditioning is asked for with ``conditional=True`` (the default is False: on labelled data the
flow models p(x), ignores the labels, and the trainer selects its checkpoint on the held-out p(x),
the density ``genlab eval`` reports as ``nll_nats``). A conditional flow models p(x | y), is selected
on the held-out p(x | y) (`GenerativeModel.val_loss` passes the labels to a model that takes them)
and ``genlab eval`` reports that density as ``nll_given_label_nats`` beside p(x). Runs saved before
the setting existed were conditional and load as such (``FlowConfig.added``).
With labelled data (``spec.num_classes = K``) and ``conditional`` the embedding table has K + 1 rows;
row K is "no label". Training replaces each label by "no label" with probability
``label_dropout`` (as classifier-free guidance does, Ho & Salimans 2022), so ``condition=None``
is a trained unconditional flow p(x) that shares every weight with p(x | y): ``log_prob``,
``sample``, ``encode`` and ``decode`` honour ``condition=`` and default to it. The embedding
feeds every coupling / autoregressive conditioner and a class-conditional affine map of the
base space (Glow's class-conditional prior, Kingma & Dhariwal 2018, Sec. 5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from ..data.preprocess import Preprocess, default_preprocess
from ..data.spec import DataSpec, Kind
from ..nn.dequant import VariationalDequantize
from ..nn.flows import data_dependent_init
from ..protocol import Batch, Bijective, Conditional, Density, GenerativeModel, Latent, Loss, Objective


@dataclass
class FlowConfig:
    """Settings every flow family shares (each family's config extends it)."""

    conditional: bool = field(default=False, metadata={
        "help": "labelled data: model p(x | y) and select the checkpoint on it (eval reports it beside p(x)); "
                "false: model p(x), ignoring the labels"})
    embed_dim: int = field(default=16, metadata={
        "help": "size of the learned label embedding (labelled data only; 0: ignore labels)"})
    label_dropout: float = field(default=0.2, metadata={
        "help": "probability of training on 'no label' instead of the label, so condition=None is a trained p(x)"})
    dequantization: Literal["uniform", "variational"] = field(default="uniform", metadata={
        "help": "discrete data: uniform (exact flow on uniformly dequantized data) | variational "
                "(Flow++ learned q(u|x); log_prob is then a lower bound)"})
    dequant_layers: int = field(default=4, metadata={"max": 100, "help": "coupling layers of the variational dequantizer q(u|x)"})
    # runs saved before `conditional` existed modelled p(x | y) whenever the data had labels
    added: ClassVar[dict[str, Any]] = {"conditional": True}


class FlowBase(GenerativeModel, Latent, Bijective, Conditional):
    """A normalizing flow on (batch, *event_shape) model-space tensors (see the module doc)."""

    density = Density.EXACT
    data_kinds = frozenset({Kind.CONTINUOUS, Kind.DISCRETE, Kind.BINARY})  # ordered values
    sampling = "fast"
    training = "MLE"
    latent_kind = "R^D"

    def __init__(self, spec: DataSpec, config: FlowConfig):
        if config.dequantization == "variational" and not spec.is_discrete:
            raise ValueError(f"{self.name}: dequantization='variational' needs discrete data; "
                             f"these data are {spec.kind.value} (drop the setting)")
        if not 0 <= config.label_dropout < 1 or config.embed_dim < 0 or config.dequant_layers < 1:
            raise ValueError(f"{self.name}: label_dropout must lie in [0, 1), embed_dim >= 0, dequant_layers >= 1")
        super().__init__(spec, config)
        self.n_classes = spec.num_classes if (config.conditional and spec.num_classes and config.embed_dim) else 0
        self.ctx_dim = config.embed_dim if self.n_classes else 0
        if self.n_classes:
            self.embed = nn.Embedding(self.n_classes + 1, self.ctx_dim)
            self.prior = nn.Linear(self.ctx_dim, 2 * spec.dim)  # class-conditional mean / log-scale
            nn.init.zeros_(self.prior.weight)
            nn.init.zeros_(self.prior.bias)

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        if spec.is_discrete and self.config.dequantization == "variational":
            return VariationalDequantize(spec, layers=self.config.dequant_layers)
        return default_preprocess(spec)

    # -- the flow: subclasses build self.layers or override these two ---------------------------
    def _flow(self, z: Tensor, ctx: Tensor | None) -> tuple[Tensor, Tensor]:
        """Model space -> base space before the class prior: (batch, *event_shape) -> same, (batch,).
        The default runs ``self.layers`` on the flattened (batch, D) values."""
        x, log_det = z.reshape(len(z), -1), z.new_zeros(len(z))
        for layer in self.layers:
            x, ld = layer(x, ctx)
            log_det = log_det + ld
        return x.reshape(z.shape), log_det

    def _flow_inverse(self, u: Tensor, ctx: Tensor | None) -> Tensor:
        x = u.reshape(len(u), -1)
        for layer in reversed(self.layers):
            x = layer.inverse(x, ctx)
        return x.reshape(u.shape)

    # -- context -----------------------------------------------------------------------------------
    @property
    def conditioned(self) -> bool:
        return bool(self.n_classes)

    def _context(self, condition: Tensor | None, n: int, device: torch.device) -> Tensor | None:
        """(batch, embed_dim) label embeddings; ``None`` labels use the "no label" row."""
        if not self.n_classes:
            if condition is not None:
                raise ValueError(f"{self.name}: this model was trained without class labels "
                                 "(conditional=false, embed_dim=0 or unlabelled data); drop condition=, "
                                 "or train with --set conditional=true on labelled data")
            return None
        if condition is None:
            condition = torch.full((n,), self.n_classes, dtype=torch.long, device=device)
        return self.embed(condition)

    def forward_and_log_det(self, z: Tensor, condition: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Model space -> base space.

        Args:
            z: (batch, *event_shape) model-space values; condition: (batch,) labels or None.
        Returns:
            u: (batch, *event_shape) base-space values, N(0, I) under the model;
            log_det: (batch,) ``log|det du/dz|``.
        """
        ctx = self._context(condition, len(z), z.device)
        u, log_det = self._flow(z, ctx)
        if ctx is not None:
            mu, log_s = self.prior(ctx).reshape(len(z), 2, *z.shape[1:]).unbind(1)
            u = (u - mu) * (-log_s).exp()
            log_det = log_det - log_s.flatten(1).sum(1)
        return u, log_det

    def inverse(self, u: Tensor, condition: Tensor | None = None) -> Tensor:
        """Base space -> model space: (batch, *event_shape) -> same."""
        ctx = self._context(condition, len(u), u.device)
        if ctx is not None:
            mu, log_s = self.prior(ctx).reshape(len(u), 2, *u.shape[1:]).unbind(1)
            u = u * log_s.exp() + mu
        return self._flow_inverse(u, ctx)

    # -- protocol ----------------------------------------------------------------------------------
    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """Fit the preprocessing, then initialise every ActNorm from up to 512 training examples."""
        super().setup(x, y, x_val)
        g = torch.Generator(device=x.device).manual_seed(0)
        with torch.no_grad():
            z, _ = self.pre(self.check_input(x[:512]), g)
        cond = y[:512] if (y is not None and self.n_classes) else None
        with data_dependent_init(self):
            self.forward_and_log_det(z, cond)

    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        u, log_det = self.forward_and_log_det(z, condition)
        return -0.5 * u.flatten(1).pow(2).sum(1) - 0.5 * self.spec.dim * math.log(2 * math.pi) + log_det

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        p = self._some_tensor()
        u = torch.randn(n, *self.spec.event_shape, generator=generator, dtype=p.dtype, device=p.device)
        return self.inverse(u, condition)

    def nll_loss(self, batch: Batch) -> Loss:
        """Mean NLL (nats, data space); labels are dropped to "no label" with ``label_dropout``."""
        cond = batch.y if self.n_classes else None
        if cond is not None and self.config.label_dropout > 0:
            drop = torch.rand(len(cond), generator=batch.generator, device=cond.device) < self.config.label_dropout
            cond = torch.where(drop, torch.full_like(cond, self.n_classes), cond)
        z, logdet = self.pre(batch.x, batch.generator)
        return Loss(-(self._log_prob(z, condition=cond) + logdet).mean())

    def objectives(self) -> list[Objective]:
        return [Objective("nll", list(self.parameters()), self.nll_loss)]

    # -- Latent: the base space R^D ----------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.spec.dim

    @torch.no_grad()
    def encode(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """Base-space codes: x: (batch, *event_shape) data space -> (batch, D). Discrete data are
        dequantized with fixed-seed noise, so a code is reproducible."""
        x = self.check_input(x)
        condition = self._check_condition(condition, len(x))
        z, _ = self.pre(x, torch.Generator(device=x.device).manual_seed(0))
        return self.forward_and_log_det(z, condition)[0].reshape(len(x), -1)

    @torch.no_grad()
    def decode(self, codes: Tensor, condition: Tensor | None = None) -> Tensor:
        """Data-space examples from base-space codes: (batch, D) -> (batch, *event_shape)."""
        p = self._some_tensor()
        u = torch.as_tensor(codes, dtype=p.dtype, device=p.device).reshape(-1, *self.spec.event_shape)
        return self.pre.inverse(self.inverse(u, self._check_condition(condition, len(u))))
