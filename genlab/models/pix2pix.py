"""pix2pix: paired image-to-image translation with a conditional GAN (Isola et al. 2017).

``G: input -> output`` is a `UNet`; the critic is a `PatchCritic` on the input and an output
stacked as channels; G minimises the adversarial loss plus ``l1_weight * |G(a) - x|_1`` (Eq. 4;
lambda = 100 in the paper). The GAN loss and regularizers are those of the ``gan`` family.

How the paired model fits the protocol (a design decision):

* It is trained on *target* images x, like every family; the config's ``pairing`` (``edges``,
  ``lowres``, ``masked``; `genlab.data.paired`) computes each input a = pairing(x) on the fly,
  so any image set is a paired set and `Trainer`, the CLI and the Estimator need nothing new.
* ``translate(inputs)`` is the real use: data-space inputs (an edge map, a low-resolution or a
  masked image, same shape and levels as the data) -> data-space outputs.
* ``sample(n)`` is honest about what the model is, a conditional model of x given a: it translates
  the inputs derived from ``n`` images drawn from the stored held-out targets (the validation
  images given to ``setup``, else training images). Like the paper's G at test time without
  dropout, G is deterministic: the diversity of samples is that of the stored targets.
* ``val_loss`` is the held-out L1 on a [0, 1] pixel scale, so the trainer keeps the best weights.
* ``log_prob`` raises NotSupported: an adversarial model has no density.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..data.paired import PAIRINGS, make_inputs
from ..data.preprocess import Preprocess
from ..data.spec import DataSpec, Kind
from ..nn.translation import PatchCritic, UNet
from ..objectives.gan import critic_loss, generator_loss
from ..protocol import register, Batch, Density, GenerativeModel, Loss, Objective, Translator
from ._translation import check_image_spec, image_preprocess, pick, size_stored_images
from .gan import (AdversarialConfig, adversarial_objectives, apply_regularizers, check_adversarial,
                  critic_penalties, eval_mode, frozen, generator_penalties)


@dataclass
class Pix2PixConfig(AdversarialConfig):
    renamed: ClassVar[dict[str, str]] = {"bank": "stored_images"}

    pairing: Literal[PAIRINGS] = field(default="edges", metadata={
        "help": "what the input is, computed from each target image: edges (Sobel) | lowres | masked"})
    factor: int = field(default=4, metadata={"help": "lowres: block size of the low-resolution input"})
    l1_weight: float = field(default=100.0, metadata={"help": "weight lambda of the L1 term (paper: 100)"})
    base: int = field(default=32, metadata={"help": "channels of the U-Net and critic at full resolution"})
    depth: int = field(default=2, metadata={"max": 16, "help": "stride-2 levels of the U-Net"})
    critic_layers: int = field(default=2, metadata={"max": 16, "help": "stride-2 layers of the PatchGAN critic"})
    stored_images: int = field(default=256, metadata={
        "help": "held-out target images kept in the model: sample() translates their inputs"})


@register("pix2pix")
class Pix2Pix(GenerativeModel, Translator):
    """Paired translation: U-Net generator, PatchGAN critic, GAN loss + L1 (Isola et al. 2017)."""

    Config = Pix2PixConfig
    density = Density.NONE
    data_kinds = frozenset(Kind) - {Kind.CONTINUOUS}  # grey levels, rescaled to [-1, 1]
    sampling = "fast"
    training = "min-max + L1"
    default_epochs = 50
    directions = ("forward",)

    def __init__(self, spec: DataSpec, config: Pix2PixConfig):
        check_image_spec(spec, "pix2pix")
        super().__init__(spec, config)
        check_adversarial(config, "pix2pix")
        c = config
        if min(c.factor, c.base, c.depth, c.critic_layers, c.stored_images) < 1 or c.l1_weight < 0:
            raise ValueError("pix2pix: factor, base, depth, critic_layers and stored_images must be >= 1, "
                             "l1_weight >= 0")
        ch = spec.event_shape[0]
        self.generator = UNet(ch, ch, c.base, c.depth)
        self.critic = PatchCritic(2 * ch, c.base, c.critic_layers)
        apply_regularizers(config, [self.generator], [self.critic])
        self.register_buffer("stored_targets", torch.zeros(0, *spec.event_shape))  # sized by setup / load

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        return image_preprocess(spec)

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        super().setup(x, y, x_val)
        src = x_val if x_val is not None and len(x_val) > 0 else x
        self.stored_targets = self.check_input(src[:self.config.stored_images]).clone()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        size_stored_images(self, state_dict, prefix, ("stored_targets",), {"bank": "stored_targets"})
        super()._load_from_state_dict(state_dict, prefix, *args)

    # -- pieces ----------------------------------------------------------------------------------
    def inputs(self, x: Tensor) -> Tensor:
        """The input paired with each target: data space (n, *event_shape) -> same."""
        return make_inputs(self.check_input(x), self.config.pairing, self.spec.levels, self.config.factor)

    def _pair(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data-space targets -> model-space (inputs, targets)."""
        return self.pre(self.inputs(x))[0], self.pre(x)[0]

    def _critic(self, a: Tensor, b: Tensor) -> Tensor:
        return self.critic(torch.cat([a, b], 1))

    # -- objectives ------------------------------------------------------------------------------
    def critic_loss(self, batch: Batch) -> Loss:
        """The critic's loss on real pairs (a, x) and fake pairs (a, G(a)), plus regularizers."""
        a, b = self._pair(batch.x)
        with torch.no_grad():
            fake = self.generator(a)
        real_out, fake_out = self._critic(a, b), self._critic(a, fake)
        adv = critic_loss(self.config.loss, real_out, fake_out)
        reg, logs = critic_penalties(self.config, lambda v: self._critic(a, v), self.critic, b, fake,
                                     batch.generator)
        return Loss(adv + reg, {"critic": float(adv.detach()), **logs})

    def generator_loss(self, batch: Batch) -> Loss:
        """``L_GAN(G) + l1_weight * E|G(a) - x|`` (Isola et al. 2017, Eq. 4)."""
        a, b = self._pair(batch.x)
        fake = self.generator(a)
        with frozen(self.critic):
            adv = generator_loss(self.config.loss, self._critic(a, fake))
        l1 = (fake - b).abs().mean()
        reg, logs = generator_penalties(self.config, self.generator)
        logs.update(generator=float(adv.detach()), l1=float(l1.detach()))
        return Loss(adv + self.config.l1_weight * l1 + reg, logs)

    def objectives(self) -> list[Objective]:
        return adversarial_objectives(self)

    # -- translation and sampling ------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, inputs: Tensor, direction: str | None = None) -> Tensor:
        """Data-space inputs (n, *event_shape) (e.g. edge maps on the data's grey levels) ->
        data-space outputs of the same shape."""
        if direction not in (None, "forward"):
            raise ValueError(f"pix2pix translates one way (forward); got direction={direction!r}")
        a = self.pre(self.check_input(inputs))[0]
        with eval_mode(self.generator):
            return self.pre.inverse(self.generator(a))

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        targets = pick(self.stored_targets, len(self.stored_targets), n, generator, "pix2pix")
        with eval_mode(self.generator):
            return self.generator(self._pair(targets)[0])

    @torch.no_grad()
    def l1(self, x: Tensor) -> Tensor:
        """Per-example mean |translate(inputs(x)) - x| on a [0, 1] pixel scale: (n,)."""
        x = self.check_input(x)
        out = self.translate(self.inputs(x))
        return (out - x).abs().flatten(1).mean(1) / (self.spec.levels - 1)

    def val_loss(self, x: Tensor, y: Tensor | None = None) -> float | None:
        """Held-out L1 (lower is better), for early stopping and keeping the best weights."""
        return float(self.l1(x).mean())
