"""Energy-based model trained by contrastive divergence with short-run Langevin chains and a
replay buffer (Du & Mordatch 2019, "Implicit Generation and Generalization in EBMs").

``p(z) ∝ exp(-E(z) / T)`` in model space, ``E`` an MLP (or, given ``channels``, a small conv net
for images; on 8x8 digits the MLP is 3-4x faster per Langevin step). Each
training step (Du & Mordatch 2019, Alg. 1):

1. draw ``batch`` slots of the replay buffer (a model buffer, saved with the weights); a fraction
   ``fresh`` (5%) of the chains restart from noise, the rest from the stored states;
2. run ``langevin_steps`` of Langevin dynamics (`genlab.samplers.langevin.Langevin`) on ``E``;
3. write the end states back into their slots (persistent chains);
4. loss ``mean E(x+) - mean E(x-) + alpha * mean(E(x+)^2 + E(x-)^2)``; its gradient is the CD
   gradient (the negatives ``x-`` are constants), the L2 term keeps energies near 0.

**The reported loss.** Every random draw (slots, fresh starts, Langevin noise) comes from the
batch's generator, so on a fixed batch with a fixed seed the chains restart from the same slots;
those slots hold the previous call's end states (the buffer is updated), so the negatives are the
same persistent chains run further, not a fixed set. The loss falls when the energy gap between
data and negatives grows faster than ``langevin_steps`` of sampling close it. Two choices keep
that true from the first step (and keep training stable): ``E`` starts at exactly 0 (zero last
layer), so the first chains are pure diffusion rather than a random network's descent, and the
chains are clamped to the data's box (dequantized levels: their domain, mapped onto
``[-1, 1]^D``; continuous data: the per-entry range in model space, widened by ``margin``), as
Du & Mordatch clamp images to [0, 1]. It is not a likelihood (no early stopping on it).

**Temperature.** Langevin with step ``eta`` and noise std ``sigma`` leaves (as ``eta -> 0``)
``exp(-E(z) / T)`` invariant, ``T = sigma^2 / (2 eta)``: with the usual colder noise (``sigma``
below ``sqrt(2 eta)``) the chains, hence the samples and the negatives the net was trained
against, follow ``exp(-E / T)``, not ``exp(-E)``. So the model's energy is ``U = E / T`` (the
network's output ``E`` divided by the sampler's temperature): `energy`, `log_partition` and
`log_prob_estimate` describe the distribution that `sample` draws from. (The Langevin update is
the same as exact Langevin on ``U`` with step ``sigma^2 / 2``.)

Density is UNNORMALIZED: `energy` (data space) works, `log_prob` raises `NotSupported`. The
model's distribution lives on the box its chains are clamped to, ``p(z) = exp(-U(z)) 1_B(z) / Z``,
so ``Z`` is finite; `log_partition` computes it by quadrature (1-2 values per example) or AIS
from the uniform density on the box (`genlab.samplers.ais_energy`), and `log_prob_estimate`
gives ``log p(x)`` (``-inf`` outside the box). At the default cold temperature on 64-D digits
``U`` is so peaked that AIS from the uniform box is degenerate (one chain carries the weight:
relative stderr ~1, and 1,000 and 3,000 steps disagree by thousands of nats): that ``log Z``,
and the NLL made with it, are not usable there; the estimate's stderr says so.
`sample` continues ``sample_steps`` of Langevin from random replay-buffer states
(``sample_init="buffer"``, the default: the buffer is the model's persistent chain state, so the
samples are draws of those chains run on under the final weights; the buffer is not changed), or
runs them from fresh uniform noise in the box (``"noise"``: short-run chains, Nijkamp et al. 2019).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ..data.spec import DataSpec, Kind
from ..nn import MLP, ConvEncoder
from ..samplers.ais_energy import box_ais, box_quadrature
from ..protocol import Estimate
from ..protocol import register, Batch, Density, GenerativeModel, Loss, Objective, Partition
from ..samplers.langevin import Langevin

_BOX = 3.0  # the chains' box before `setup` sees data: [-3, 3]^D of standardised space


@dataclass
class EBMConfig:
    hidden: int = field(default=256, metadata={"help": "width of the energy MLP's hidden layers (conv head)"})
    depth: int = field(default=2, metadata={"max": 100, "help": "hidden layers of the energy MLP"})
    channels: tuple[int, ...] = field(default=(), metadata={
        "help": "channels of the stride-2 convolutions of the energy net for images (empty: the MLP on "
                "the flattened image, 3-4x faster per Langevin step on 8x8 digits)"})
    alpha: float = field(default=0.1, metadata={
        "help": "weight of the L2 energy regulariser alpha * (E+^2 + E-^2) (Du & Mordatch 2019)"})
    langevin_steps: int = field(default=20, metadata={"help": "Langevin steps per training step"})
    step_size: float = field(default=1.0, metadata={"help": "Langevin step size eta (model space)"})
    noise_scale: float = field(default=0.01, metadata={
        "help": "Langevin noise std (sqrt(2 * step_size) is exact Langevin; smaller is colder: the model "
                "is exp(-E / T), T = noise_scale^2 / (2 step_size))"})
    grad_clip: float = field(default=10.0, metadata={"help": "clamp of each energy-gradient entry in Langevin"})
    margin: float = field(default=0.5, metadata={
        "help": "continuous data: chains live in the training data's per-entry range (model space) "
                "widened by this (dequantized levels: their whole domain)"})
    buffer_size: int = field(default=2000, metadata={
        "help": "replay-buffer states kept with the model (persistent chains: fewer are run longer)"})
    fresh: float = field(default=0.05, metadata={"help": "fraction of chains restarted from noise each step"})
    sample_steps: int = field(default=200, metadata={"help": "Langevin steps used by sample()"})
    sample_init: Literal["noise", "buffer"] = field(default="buffer", metadata={
        "help": "where sample() starts its chains: buffer (continue the persistent chains) | noise"})


@register("ebm")
class EBM(GenerativeModel, Partition):
    """Energy-based model ``p(x) ∝ exp(-E(x))`` trained by contrastive divergence; Langevin sampling."""
    in_default_compare = True  # stands for its row in `genlab compare`'s default set
    taxonomy = "energy-based"

    Config = EBMConfig
    density = Density.UNNORMALIZED
    data_kinds = frozenset({Kind.CONTINUOUS, Kind.DISCRETE, Kind.BINARY})  # ordered values
    sampling = "slow, Langevin"
    training = "approximate MLE (CD, replay buffer)"
    # ~900 steps on digits (40 epochs of 23 batches), ~1 minute on one thread; no likelihood to
    # validate on, so no early stopping
    default_epochs = 40
    default_train = {"batch_size": 64, "patience": None}

    def __init__(self, spec: DataSpec, config: EBMConfig):
        super().__init__(spec, config)
        c = config
        if c.hidden < 1 or c.depth < 0 or c.langevin_steps < 1 or c.sample_steps < 0:
            raise ValueError("ebm: hidden and langevin_steps must be >= 1, depth and sample_steps >= 0")
        if c.alpha < 0 or not 0 <= c.fresh <= 1 or c.buffer_size < 1:
            raise ValueError("ebm: alpha must be >= 0, fresh in [0, 1], buffer_size >= 1")
        if c.margin < 0 or c.noise_scale <= 0:
            raise ValueError(f"ebm: margin must be >= 0 and noise_scale > 0, got {c.margin}, {c.noise_scale}")
        self.sampler = Langevin(c.step_size, c.langevin_steps, c.noise_scale, c.grad_clip,
                                init="uniform", init_scale=_BOX)
        if spec.is_image and c.channels:
            self.net = ConvEncoder(spec.event_shape, 1, c.channels, c.hidden)
            last = self.net.head[-1]
        else:
            self.net = MLP(spec.dim, 1, (c.hidden,) * c.depth)
            last = self.net[-1]
        # E starts at 0: the first chains are pure diffusion instead of a random net's descent
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        shape = tuple(spec.event_shape)
        # the box chains are clamped to (set from the data by `setup`) and the replay buffer,
        # uniform noise in the box (drawn from the global RNG at construction, like the weights:
        # `genlab.make(..., seed=)` seeds it)
        self.register_buffer("low", torch.full(shape, -_BOX))
        self.register_buffer("high", torch.full(shape, _BOX))
        self.register_buffer("replay", self.sampler.init_noise(c.buffer_size, shape))

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """Fit the preprocessing and set the chains' box, then move the replay buffer into the new
        box (an affine map). Dequantized levels: the box is their whole domain ``[0, 1)^D``, mapped
        onto ``[-1, 1]^D`` (one scale for every entry, as images are clamped to their range), so
        a held-out image whose pixel never varied in training is still inside the support.
        Continuous data: standardized, the box is the data's per-entry range widened by ``margin``."""
        super().setup(x, y, x_val)
        if self.pre.lower_bound:
            with torch.no_grad():
                self.pre.mean.fill_(0.5)
                self.pre.std.fill_(0.5)
            low, high = -torch.ones_like(self.low), torch.ones_like(self.high)
        else:
            z, _ = self.pre(self.check_input(x), torch.Generator(device=x.device).manual_seed(0))
            low, high = z.min(0).values - self.config.margin, z.max(0).values + self.config.margin
        with torch.no_grad():
            unit = (self.replay - self.low) / (self.high - self.low)
            self.replay.copy_(low + unit * (high - low))
            self.low.copy_(low)
            self.high.copy_(high)

    def _box_noise(self, n: int, generator: torch.Generator | None) -> Tensor:
        """Fresh chain starts, uniform in the box: (n, *event_shape)."""
        u = torch.rand(n, *self.low.shape, generator=generator, dtype=self.low.dtype, device=self.low.device)
        return self.low + u * (self.high - self.low)

    def _run(self, x0: Tensor, generator: torch.Generator | None, n_steps: int | None = None) -> Tensor:
        return self.sampler(self._energy, x0, generator=generator, n_steps=n_steps, bounds=(self.low, self.high))

    # -- energies --------------------------------------------------------------------------------
    def _energy(self, z: Tensor) -> Tensor:
        """The network's energy ``E`` in model space (what training and Langevin use):
        z: (batch, *event_shape) -> (batch,)."""
        shape = self.spec.event_shape if isinstance(self.net, ConvEncoder) else (-1,)
        return self.net(z.reshape(len(z), *shape)).squeeze(-1)

    @property
    def temperature(self) -> float:
        """``T = noise_scale^2 / (2 step_size)``: the Langevin chains follow ``exp(-E / T)``."""
        return self.config.noise_scale ** 2 / (2 * self.config.step_size)

    def _model_energy(self, z: Tensor) -> Tensor:
        """The model's energy ``U = E / T`` in model space: (batch, *event_shape) -> (batch,)."""
        return self._energy(z) / self.temperature

    def energy(self, x: Tensor) -> Tensor:
        """Data-space energy ``U(f(x)) - log|det df/dx|`` (``f`` the preprocessing, ``U = E / T``),
        so that ``exp(-energy)`` is proportional to the density of ``x`` that the chains sample:
        (batch, ...) -> (batch,). Discrete data are dequantized with fixed-seed noise (reproducible)."""
        x = self.check_input(x)
        z, logdet = self.pre(x, torch.Generator(device=x.device).manual_seed(0))
        return self._model_energy(z) - logdet

    # -- normalizer (the density lives on the box the chains are clamped to) -----------------------
    def partition_method(self) -> str:
        return "quadrature" if self.spec.dim <= 2 else "ais"

    def log_partition(self, method: str = "auto", *, steps: int | None = None, chains: int | None = None,
                      generator: torch.Generator | None = None) -> tuple[Estimate, str]:
        """``log Z`` of ``exp(-U(z))`` over the box ``[low, high]`` in model space:
        ``quadrature`` (1-2 values per example; 400 (or ``steps``) nodes per axis) or ``ais``
        (``steps`` (1000) annealing steps, ``chains`` (256) HMC chains; optimistic, see
        `genlab.samplers.ais_energy`)."""
        method = self.partition_method() if method == "auto" else method
        was = self.training
        self.eval()
        try:
            if method == "quadrature":
                return Estimate(box_quadrature(self._model_energy, self.low, self.high, steps or 400), 0.0, 0), method
            if method == "ais":
                return box_ais(self._model_energy, self.low, self.high, steps=steps or 1000, chains=chains or 256,
                               generator=generator), method
        finally:
            self.train(was)
        raise ValueError(f"ebm: log_partition method must be auto, quadrature or ais, got {method!r}")

    @torch.no_grad()
    def log_prob_estimate(self, x: Tensor, log_z: Estimate | None = None, **kw) -> tuple[Tensor, str]:
        """``-energy(x) - log Z`` per example, ``-inf`` where ``x`` falls outside the box (the
        model puts no mass there): (n,) float64 nats, and how ``log Z`` was obtained."""
        lp, method = super().log_prob_estimate(x, log_z, **kw)
        z, _ = self.pre(self.check_input(x), torch.Generator(device=self.low.device).manual_seed(0))
        inside = ((z >= self.low) & (z <= self.high)).flatten(1).all(1)
        return torch.where(inside, lp, torch.full_like(lp, -math.inf)), method

    # -- training --------------------------------------------------------------------------------
    def _negatives(self, n: int, generator: torch.Generator | None) -> Tensor:
        """Run persistent chains from ``n`` buffer slots (``fresh`` of them restarted from noise),
        write the end states back, return them: (n, *event_shape)."""
        size, dev = len(self.replay), self.replay.device
        if n <= size:
            idx = torch.randperm(size, generator=generator, device=dev)[:n]
        else:
            idx = torch.randint(size, (n,), generator=generator, device=dev)
        x0 = self.replay[idx]
        restart = torch.rand(n, generator=generator, device=dev) < self.config.fresh
        x0 = torch.where(restart.view(-1, *[1] * (x0.ndim - 1)), self._box_noise(n, generator), x0)
        x = self._run(x0, generator)
        with torch.no_grad():
            self.replay[idx] = x
        return x

    def _loss(self, batch: Batch) -> Loss:
        """Contrastive divergence with the L2 energy regulariser (Du & Mordatch 2019, Sec. 3.3)."""
        z, _ = self.pre(batch.x, batch.generator)
        neg = self._negatives(len(z), batch.generator)
        e_pos, e_neg = self._energy(z), self._energy(neg)
        cd = e_pos.mean() - e_neg.mean()
        reg = self.config.alpha * (e_pos.pow(2) + e_neg.pow(2)).mean()
        return Loss(cd + reg, logs={"cd": float(cd.detach()), "e_pos": float(e_pos.mean().detach()),
                                        "e_neg": float(e_neg.mean().detach())})

    def objectives(self) -> list[Objective]:
        return [Objective("cd", list(self.net.parameters()), self._loss)]

    # -- sampling --------------------------------------------------------------------------------
    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Langevin chains of ``sample_steps`` steps: (n, *event_shape) in model space."""
        if self.config.sample_init == "buffer":  # distinct chains while the buffer has enough
            size, dev = len(self.replay), self.replay.device
            idx = torch.cat([torch.randperm(size, generator=generator, device=dev) for _ in range(-(-n // size))])
            x0 = self.replay[idx[:n]]
        else:
            x0 = self._box_noise(n, generator)
        return self._run(x0, generator, self.config.sample_steps)
