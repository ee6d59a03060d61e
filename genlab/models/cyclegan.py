"""CycleGAN: unpaired translation between two image domains (Zhu et al. 2017).

Two generators ``G_ab: A -> B`` and ``G_ba: B -> A`` (`UNet`), two critics ``D_a``, ``D_b``
(`PatchCritic`), three objectives for the one trainer: ``critic_a``, ``critic_b`` and
``generators`` (both G together, as the cycle term couples them):

    L_G = L_adv(D_b(G_ab(a))) + L_adv(D_a(G_ba(b)))
          + lambda_cyc (|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1)           (Eq. 2)
          + lambda_id lambda_cyc (|G_ab(b) - b|_1 + |G_ba(a) - a|_1)             (Sec. 5.2)

The loss defaults to least squares (``lsgan``), the paper's choice; every loss and regularizer of
the ``gan`` family is a setting. The paper's history buffer of 50 fakes is not used.

How domain B reaches the model (a design decision): the model is trained on domain A's images,
like every family; ``domain_b`` names a data set that ``setup`` loads (``load_dataset``, at most
``n_b`` images) and puts onto A's shape and grey levels (`resize_domain`: channel mean, an
antialiased bilinear resize; Fashion-MNIST 28x28 -> digits 8x8). The B images are a buffer of
the model, saved in ``model.safetensors``, so a trained model translates and samples without the
data. Each step pairs the batch of A with B images drawn at random (unpaired).
``sample(n)`` translates ``n`` stored B images to domain A with ``G_ba``;
``translate(x, "a2b" | "b2a")`` maps data-space images either way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..data.datasets import load_dataset
from ..data.paired import resize_domain
from ..data.preprocess import Preprocess
from ..data.spec import DataSpec
from ..nn.translation import PatchCritic, UNet
from ..objectives.gan import critic_loss, generator_loss
from ..protocol import register, Batch, Density, GenerativeModel, Loss, Objective
from ._translation import Translator, check_image_spec, image_preprocess, pick
from .gan import (AdversarialConfig, apply_regularizers, check_adversarial, critic_penalties, eval_mode,
                  frozen, generator_penalties)


@dataclass
class CycleGANConfig(AdversarialConfig):
    loss: str = field(default="lsgan", metadata={
        "help": "lsgan (paper) | minimax | ns | wgan | wgan-gp | hinge"})
    domain_b: str = field(default="fashion-mnist", metadata={
        "help": "data set of domain B (loaded by name in setup, resized to domain A's shape and levels)"})
    n_b: int = field(default=2000, metadata={"help": "at most this many domain-B images are loaded and stored"})
    cycle_weight: float = field(default=10.0, metadata={
        "help": "lambda_cyc of the cycle-consistency term (paper: 10)"})
    identity_weight: float = field(default=0.5, metadata={
        "help": "identity term weight, as a fraction of cycle_weight (paper: 0.5)"})
    base: int = field(default=32, metadata={"help": "channels of the U-Nets and critics at full resolution"})
    depth: int = field(default=2, metadata={"help": "stride-2 levels of the U-Nets"})
    critic_layers: int = field(default=2, metadata={"help": "stride-2 layers of the PatchGAN critics"})


@register("cyclegan")
class CycleGAN(GenerativeModel, Translator):
    """Unpaired translation A <-> B: two U-Nets, two PatchGAN critics, cycle + identity terms."""

    Config = CycleGANConfig
    density = Density.NONE
    sampling = "fast"
    training = "min-max + cycle"
    default_epochs = 50
    directions = ("b2a", "a2b")

    def __init__(self, spec: DataSpec, config: CycleGANConfig):
        check_image_spec(spec, "cyclegan")
        super().__init__(spec, config)
        check_adversarial(config, "cyclegan")
        if min(config.n_b, config.base, config.depth, config.critic_layers) < 1:
            raise ValueError("cyclegan: n_b, base, depth and critic_layers must be >= 1")
        if config.cycle_weight < 0 or config.identity_weight < 0:
            raise ValueError("cyclegan: cycle_weight and identity_weight must be >= 0")
        c = spec.event_shape[0]
        self.g_ab, self.g_ba = UNet(c, c, config.base, config.depth), UNet(c, c, config.base, config.depth)
        self.d_a, self.d_b = (PatchCritic(c, config.base, config.critic_layers) for _ in range(2))
        apply_regularizers(config, [self.g_ab, self.g_ba], [self.d_a, self.d_b])
        self.register_buffer("bank_b", torch.zeros(0, *spec.event_shape))  # domain B, data space of A

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        return image_preprocess(spec)

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        super().setup(x, y, x_val)
        ds = load_dataset(self.config.domain_b, n=self.config.n_b)
        if not ds.spec.is_image:
            raise ValueError(f"cyclegan.domain_b={self.config.domain_b!r} is not an image data set; "
                             "name one such as fashion-mnist, mnist5k or digits")
        b = resize_domain(ds.x, ds.spec.levels, self.spec.event_shape, self.spec.levels)
        self.bank_b = b.to(self._some_tensor())

    def set_domain_b(self, b: Tensor) -> None:
        """Use these data-space images (n, *event_shape) as domain B instead of ``domain_b``."""
        self.bank_b = self.check_input(b).clone()

    def _pair(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Model-space A batch and an equally large random B batch."""
        a = self.pre(batch.x)[0]
        return a, self.pre(pick(self.bank_b, len(self.bank_b), len(a), batch.generator, "cyclegan"))[0]

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
        return [Objective("critic_a", list(self.d_a.parameters()), self.critic_a_loss, lr=c.lr, betas=betas),
                Objective("critic_b", list(self.d_b.parameters()), self.critic_b_loss, lr=c.lr, betas=betas),
                Objective("generators", gens, self.generators_loss, every=c.n_critic, lr=c.lr, betas=betas)]

    # -- translation and sampling ------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, inputs: Tensor, direction: str | None = None) -> Tensor:
        """Data-space images (n, *event_shape) of one domain -> the other: ``a2b`` or ``b2a``
        (default ``b2a``: into the domain the model was trained on)."""
        direction = direction or "b2a"
        if direction not in self.directions:
            raise ValueError(f"cyclegan: direction must be a2b or b2a; got {direction!r}")
        g = self.g_ab if direction == "a2b" else self.g_ba
        with eval_mode(g):
            return self.pre.inverse(g(self.pre(self.check_input(inputs))[0]))

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        b = self.pre(pick(self.bank_b, len(self.bank_b), n, generator, "cyclegan"))[0]
        with eval_mode(self.g_ba):
            return self.g_ba(b)
