"""CycleGAN: unpaired translation between two image domains (Zhu et al. 2017).

Two generators ``G_ab: A -> B`` and ``G_ba: B -> A`` (`UNet`), two critics ``D_a``, ``D_b``
(`PatchCritic`), three objectives for the one trainer: ``critic_a``, ``critic_b`` and
``generators`` (both G together, as the cycle term couples them):

    L_G = L_adv(D_b(G_ab(a))) + L_adv(D_a(G_ba(b)))
          + lambda_cyc (|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1)           (Eq. 2)
          + lambda_id lambda_cyc (|G_ab(b) - b|_1 + |G_ba(a) - a|_1)             (Sec. 5.2)

The loss defaults to least squares (``lsgan``), the paper's choice; every loss and regularizer of
the ``gan`` family is a setting. The paper's history buffer of 50 fakes is not used.

How the two domains reach the model (a design decision): only through the data, like every
family; the model never loads a data set.

* Two domains: an unpaired data set whose spec names them (``spec.domains``, from
  ``--data digits+mnist5k``; `genlab.data.domains` puts B onto A's shape and grey levels), and
  whose labels say the domain of each example (0: A, 1: B). ``setup`` keeps up to
  ``stored_images`` training images of each domain in the model.
* One domain (plain ``--data digits``): domain B is the ``derived_domain`` view of the training
  images (edge maps, low resolution or masked: `genlab.data.paired`), stored the same way; as the
  B images are drawn at random, apart from the A batch, the pairs are never seen together.

Each step takes the batch's A images and its B images (a batch without domain labels is all A);
a domain the batch lacks (always B for one image set; A or B in a short batch of two domains) is
drawn at random from the stored images, as many as the batch holds of the other. The stored
images are buffers saved in ``model.safetensors``, so a trained model translates and samples
without the data: ``sample(n)`` translates ``n`` stored B images to domain A with ``G_ba``;
``translate(x, "a2b" | "b2a")`` maps data-space images either way.

Runs saved before two-domain data sets (settings ``domain_b``, a data set the model loaded, and
``n_b``) load and resume: their B images are in the model, ``n_b`` reads as ``stored_images``
and ``domain_b`` is dropped with a warning.
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
from ..protocol import register, Batch, Density, GenerativeModel, Loss, NotSupported, Objective, Translator
from ._translation import check_image_spec, image_preprocess, pick, size_stored_images
from .gan import (AdversarialConfig, apply_regularizers, check_adversarial, critic_penalties, eval_mode,
                  frozen, generator_penalties)


@dataclass
class CycleGANConfig(AdversarialConfig):
    renamed: ClassVar[dict[str, str]] = {"n_b": "stored_images"}
    retired: ClassVar[dict[str, str]] = {
        "domain_b": "domain B comes from the data: train on two image sets joined by '+', e.g. "
                    "--data digits+mnist5k (a saved run keeps the domain-B images it stored)"}

    loss: str = field(default="lsgan", metadata={
        "help": "lsgan (paper) | minimax | ns | wgan | wgan-gp | hinge"})
    derived_domain: Literal[PAIRINGS] = field(default="edges", metadata={
        "help": "data of one domain (not A+B): domain B is this view of the training images, "
                "unpaired: edges (Sobel) | lowres (2x2 blocks) | masked (centre blacked out)"})
    stored_images: int = field(default=2000, metadata={
        "help": "at most this many training images of each domain are kept in the model (sample() "
                "translates the stored B images)"})
    cycle_weight: float = field(default=10.0, metadata={
        "help": "lambda_cyc of the cycle-consistency term (paper: 10)"})
    identity_weight: float = field(default=0.5, metadata={
        "help": "identity term weight, as a fraction of cycle_weight (paper: 0.5)"})
    base: int = field(default=32, metadata={"help": "channels of the U-Nets and critics at full resolution"})
    depth: int = field(default=2, metadata={"max": 16, "help": "stride-2 levels of the U-Nets"})
    critic_layers: int = field(default=2, metadata={"max": 16, "help": "stride-2 layers of the PatchGAN critics"})


@register("cyclegan")
class CycleGAN(GenerativeModel, Translator):
    """Unpaired translation A <-> B: two U-Nets, two PatchGAN critics, cycle + identity terms."""

    Config = CycleGANConfig
    density = Density.NONE
    data_kinds = frozenset(Kind) - {Kind.CONTINUOUS}  # grey levels, rescaled to [-1, 1]
    sampling = "fast"
    training = "min-max + cycle"
    default_epochs = 50
    directions = ("b2a", "a2b")

    def __init__(self, spec: DataSpec, config: CycleGANConfig):
        check_image_spec(spec, "cyclegan")
        if spec.domains is not None and len(spec.domains) != 2:
            raise NotSupported(f"cyclegan: translates between two domains; the data join "
                               f"{len(spec.domains)} ({' + '.join(spec.domains)})")
        super().__init__(spec, config)
        check_adversarial(config, "cyclegan")
        if min(config.stored_images, config.base, config.depth, config.critic_layers) < 1:
            raise ValueError("cyclegan: stored_images, base, depth and critic_layers must be >= 1")
        if config.cycle_weight < 0 or config.identity_weight < 0:
            raise ValueError("cyclegan: cycle_weight and identity_weight must be >= 0")
        c = spec.event_shape[0]
        self.g_ab, self.g_ba = UNet(c, c, config.base, config.depth), UNet(c, c, config.base, config.depth)
        self.d_a, self.d_b = (PatchCritic(c, config.base, config.critic_layers) for _ in range(2))
        apply_regularizers(config, [self.g_ab, self.g_ba], [self.d_a, self.d_b])
        # data space of A; sized by setup (or by loading a saved model)
        self.register_buffer("domain_a_images", torch.zeros(0, *spec.event_shape))
        self.register_buffer("domain_b_images", torch.zeros(0, *spec.event_shape))

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        return image_preprocess(spec)

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """Keep up to ``stored_images`` training images of each domain (see the module docstring)."""
        super().setup(x, y, x_val)
        x, keep = self.check_input(x), self.config.stored_images
        if self.spec.domains is None:
            a = x[:keep]
            b = make_inputs(a, self.config.derived_domain, self.spec.levels)
        else:
            if y is None:
                raise ValueError(f"cyclegan: the data join domains {' + '.join(self.spec.domains)}; "
                                 "pass their labels (y: 0 for A, 1 for B) with the images")
            a, b = x[y == 0][:keep], x[y == 1][:keep]  # the stores fill a batch that lacks a domain
            empty = [d for d, imgs in zip(self.spec.domains, (a, b)) if len(imgs) == 0]
            if empty:
                raise ValueError(f"cyclegan: the training data hold no image of domain {empty[0]}; "
                                 "use more data")
        self.domain_a_images, self.domain_b_images = a.clone(), b.clone()

    def set_domain_b(self, b: Tensor) -> None:
        """Use these data-space images (n, *event_shape) as the stored domain B instead of the data's."""
        self.domain_b_images = self.check_input(b).clone()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # runs saved before two-domain data hold "bank_b" and no stored A images
        size_stored_images(self, state_dict, prefix, ("domain_a_images", "domain_b_images"),
                           {"bank_b": "domain_b_images"})
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _split(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """The batch's data-space images of domain A and of domain B (none without domain labels)."""
        if self.spec.domains is None or batch.y is None:
            return batch.x, batch.x[:0]
        return batch.x[batch.y == 0], batch.x[batch.y == 1]

    def _pair(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Model-space A and B images of a step: the batch's, a missing domain drawn from the stored ones."""
        a, b = self._split(batch)
        if len(a) == 0:
            a = pick(self.domain_a_images, len(self.domain_a_images), len(b), batch.generator, "cyclegan")
        if len(b) == 0:
            b = pick(self.domain_b_images, len(self.domain_b_images), len(a), batch.generator, "cyclegan")
        return self.pre(a)[0], self.pre(b)[0]

    # -- objectives ------------------------------------------------------------------------------
    def _critic_loss(self, critic, real: Tensor, fake: Tensor, generator) -> Loss:
        real_out, fake_out = critic(real), critic(fake)
        adv = critic_loss(self.config.loss, real_out, fake_out)
        reg, logs = critic_penalties(self.config, critic, critic, real, fake, generator)
        return Loss(adv + reg, {"critic": float(adv.detach()), **logs})

    def critic_a_loss(self, batch: Batch) -> Loss:
        """D_a: real A images against G_ba(b)."""
        a, b = self._pair(batch)
        with torch.no_grad():
            fake = self.g_ba(b)
        return self._critic_loss(self.d_a, a, fake, batch.generator)

    def critic_b_loss(self, batch: Batch) -> Loss:
        """D_b: real B images against G_ab(a)."""
        a, b = self._pair(batch)
        with torch.no_grad():
            fake = self.g_ab(a)
        return self._critic_loss(self.d_b, b, fake, batch.generator)

    def generators_loss(self, batch: Batch) -> Loss:
        """Adversarial + cycle-consistency + identity terms of both generators (Eq. 3)."""
        c = self.config
        a, b = self._pair(batch)
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        with frozen(self.d_a, self.d_b):
            adv = generator_loss(c.loss, self.d_b(fake_b)) + generator_loss(c.loss, self.d_a(fake_a))
        cycle = (self.g_ba(fake_b) - a).abs().mean() + (self.g_ab(fake_a) - b).abs().mean()
        total = adv + c.cycle_weight * cycle
        logs = {"adversarial": float(adv.detach()), "cycle": float(cycle.detach())}
        if c.identity_weight > 0:
            ident = (self.g_ab(b) - b).abs().mean() + (self.g_ba(a) - a).abs().mean()
            total, logs["identity"] = total + c.identity_weight * c.cycle_weight * ident, float(ident.detach())
        for g in (self.g_ab, self.g_ba):
            reg, reg_logs = generator_penalties(c, g)
            total = total + reg
            logs.update(reg_logs)
        return Loss(total, logs)

    def objectives(self) -> list[Objective]:
        c = self.config
        betas = tuple(c.betas)
        gens = [*self.g_ab.parameters(), *self.g_ba.parameters()]
        lr_d = c.lr if c.critic_lr is None else c.critic_lr
        return [Objective("critic_a", list(self.d_a.parameters()), self.critic_a_loss, lr=lr_d, betas=betas),
                Objective("critic_b", list(self.d_b.parameters()), self.critic_b_loss, lr=lr_d, betas=betas),
                Objective("generators", gens, self.generators_loss, every=c.n_critic, lr=c.lr, betas=betas)]

    # -- translation and sampling ------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, inputs: Tensor, direction: str | None = None) -> Tensor:
        """Data-space images (n, *event_shape) of one domain -> the other: ``a2b`` or ``b2a``
        (default ``b2a``: into the domain the model samples)."""
        direction = direction or "b2a"
        if direction not in self.directions:
            raise ValueError(f"cyclegan: direction must be a2b or b2a; got {direction!r}")
        g = self.g_ab if direction == "a2b" else self.g_ba
        with eval_mode(g):
            return self.pre.inverse(g(self.pre(self.check_input(inputs))[0]))

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        b = self.pre(pick(self.domain_b_images, len(self.domain_b_images), n, generator, "cyclegan"))[0]
        with eval_mode(self.g_ba):
            return self.g_ba(b)
