"""MADE: Masked Autoencoder for Distribution Estimation (Germain, Gregor, Murray & Larochelle 2015).

One masked MLP (`genlab.nn.masked.MADE`) outputs, for every entry ``d`` of a flattened example,
the parameters of ``p(x_d | x_<d)`` in one pass; ``log p(x) = sum_d log p(x_d | x_<d)`` is exact.
Conditionals: a softmax over the levels for binary / discrete / categorical / text data, a
mixture of Gaussians for continuous data (in the standardized model space). Images are
flattened in raster order.

Order-agnostic training (Sec. 4.2): with ``n_orders = K > 1`` the network holds K mask sets
(orderings and hidden connectivities; set 0 is the natural order) and each training step uses
one drawn at random. Evaluation uses the *ensemble* of the K orderings,
``log p(x) = log (1/K) sum_k p_k(x)``: a mixture of K normalized autoregressive models is a
normalized density, so it stays exact (and is at least as good as the average of the K
log-likelihoods, by Jensen). Sampling draws an ordering uniformly, then the entries in that
order, which samples exactly that mixture.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from ..data.preprocess import Preprocess
from ..data.spec import DataSpec, Kind
from ..nn.masked import MADE as MaskedMLP
from ..protocol import register, Autoregressive, Batch, Density, GenerativeModel, Loss, Objective
from ._autoregressive import check_temperature, input_features, make_head, make_preprocess


@dataclass
class MADEConfig:
    hidden: int = field(default=512, metadata={"help": "width of each masked hidden layer"})
    depth: int = field(default=2, metadata={"max": 100, "help": "number of masked hidden layers"})
    n_orders: int = field(default=8, metadata={"max": 1_000,
        "help": "orderings / mask sets for order-agnostic training; log_prob is their ensemble (8 by default: "
                "the ensemble generalizes and samples better than one ordering on small data, see "
                "bench/README 'defaults'; compress codes with ordering 0)"})
    components: int = field(default=10, metadata={"max": 1_000,
        "help": "mixture components per entry: Gaussians (continuous data) or discretized "
                "logistics (output=logistic_mixture)"})
    output: Literal["auto", "softmax", "logistic_mixture"] = field(default="auto", metadata={
        "help": "conditional of an ordered discrete entry: softmax | logistic_mixture | auto "
                "(softmax up to 64 levels; above, a softmax's D x levels outputs make the net "
                "huge: 261M parameters on 28x28x256, so a discretized logistic mixture)"})
    direct: bool = field(default=True, metadata={
        "help": "masked linear connection from the input straight to the output"})
    mask_seed: int = field(default=0, metadata={"help": "seed of the orderings and hidden degrees"})
    temperature: float = field(default=1.0, metadata={
        "help": "sampling temperature (softmax logits / T; Gaussian scales * T); 1 = the model"})


SOFTMAX_MAX_LEVELS = 64


def resolve_output(spec: DataSpec, choice: str) -> str:
    """``softmax`` or ``logistic_mixture`` for ``spec`` (see `MADEConfig.output`)."""
    if choice != "auto":
        return choice
    ordered = spec.kind in (Kind.DISCRETE, Kind.BINARY)
    return "logistic_mixture" if ordered and spec.levels > SOFTMAX_MAX_LEVELS else "softmax"


@register("made")
class MADE(GenerativeModel, Autoregressive):
    """Masked autoencoder density estimator on flattened examples: (batch, *event_shape)."""
    taxonomy = "autoregressive"
    compare_minutes = 2.5  # its 8 orderings need ~900 steps on digits to sample digits

    in_default_compare = True  # one of `genlab compare`'s default families

    Config = MADEConfig
    density = Density.EXACT
    sampling = "slow"
    training = "MLE"
    default_epochs = 200

    def __init__(self, spec: DataSpec, config: MADEConfig):
        super().__init__(spec, config)
        if config.hidden < 1 or config.depth < 1 or config.n_orders < 1:
            raise ValueError("made: hidden, depth and n_orders must be >= 1")
        check_temperature(config.temperature)
        self.output = resolve_output(spec, config.output)
        self.head = make_head(spec, config.components, self.output)
        one_hot = spec.kind in (Kind.CATEGORICAL, Kind.TEXT)
        self.net = MaskedMLP(spec.dim, (config.hidden,) * config.depth, spec.levels if one_hot else 1,
                             self.head.n_params, n_masks=config.n_orders, seed=config.mask_seed,
                             direct=config.direct)

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        return make_preprocess(spec, resolve_output(spec, self.config.output))

    # -- maths in model space --------------------------------------------------------------------
    def conditionals(self, z: Tensor, which: int = 0) -> Tensor:
        """Parameters of every ``p(z_d | z_<d)`` under mask set ``which``.

        Args:
            z: (batch, *event_shape) model-space values.
        Returns:
            (batch, D, n_params); row ``d`` depends only on the entries before ``d`` in
            ordering ``which`` (``self.net.orders[which]``).
        """
        return self.net(input_features(self.spec, z.flatten(1), self.output).flatten(1), which)

    def ar_orders(self) -> Tensor:
        return self.net.orders.long()

    def entry_params(self, z: Tensor, k: int = 0) -> Tensor:
        return self.conditionals(z, k)

    def log_prob_order(self, z: Tensor, which: int) -> Tensor:
        """``log p_k(z)`` under ordering ``k = which``: (batch,)."""
        flat = z.flatten(1)
        return self.head.log_prob(flat, self.conditionals(flat, which)).sum(1)

    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        k = self.config.n_orders
        lps = torch.stack([self.log_prob_order(z, i) for i in range(k)])
        return torch.logsumexp(lps, 0) - math.log(k)

    def nll_loss(self, batch: Batch) -> Loss:
        """Mean NLL (nats) under one ordering drawn from ``batch.generator`` (order-agnostic)."""
        z, logdet = self.pre(batch.x, batch.generator)
        gen = batch.generator
        which = int(torch.randint(self.config.n_orders, (), generator=gen, device=gen.device if gen else None))
        return Loss(-(self.log_prob_order(z, which) + logdet).mean(), {"ordering": float(which)})

    def objectives(self) -> list[Objective]:
        return [Objective("nll", list(self.parameters()), self.nll_loss)]

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """D sequential passes per ordering: entry ``order[t]`` is drawn given those before it."""
        p = next(self.parameters())
        which = torch.randint(self.config.n_orders, (n,), generator=generator, device=p.device)
        z = torch.zeros(n, self.spec.dim, dtype=p.dtype, device=p.device)
        for k in torch.unique(which).tolist():
            rows = (which == k).nonzero().flatten()
            zk = z[rows]
            for d in self.net.orders[k].tolist():
                params = self.conditionals(zk, k)[:, d]
                zk[:, d] = self.head.sample(params, generator, self.config.temperature)
            z[rows] = zk
        return z.reshape(n, *self.spec.event_shape)
