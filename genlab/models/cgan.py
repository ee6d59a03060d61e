"""Class-conditional GAN (Mirza & Osindero 2014) with a projection discriminator (Miyato & Koyama
2018) or label concatenation, and every loss / regularizer of the ``gan`` family.

``G(z, y)`` takes the noise and a learned embedding of the label ``y``. The critic is either
``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>`` (``critic: projection``, Eq. 3 of Miyato & Koyama)
or a network on ``x`` joined with the one-hot label (``critic: concat``; images get K constant
label planes). Fakes in a critic step take the labels of the real batch. A batch without labels
uses an extra "unknown" label K (the null condition of classifier-free guidance; its one-hot is
all zeros), so unlabelled batches train a marginal model instead of failing; ``sample`` without
``condition=`` draws labels from the training label frequencies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..data.spec import DataSpec
from ..nn import MLP, ConvDecoder, ConvEncoder
from ..protocol import register, Batch, Conditional, NotSupported
from .gan import GANBase, GANConfig, eval_mode


@dataclass
class CGANConfig(GANConfig):
    critic: Literal["projection", "concat"] = field(default="projection", metadata={
        "help": "how the critic sees the label: projection (Miyato & Koyama 2018) | concat (one-hot)"})
    embed_dim: int = field(default=16, metadata={"help": "size of the generator's label embedding"})


class ConditionalCritic(nn.Module):
    """``(x: (batch, *event_shape), y: (batch,) in 0..K) -> (batch,)``; label K means unknown.

    Args:
        shape: event shape of x (vectors or (C, H, W) images).
        k: number of classes K.
        hidden: width of the feature layer.
        depth: hidden layers of the MLP (vectors).
        kind: ``projection`` or ``concat``.
    """

    def __init__(self, shape: tuple[int, ...], k: int, hidden: int, depth: int, kind: str):
        super().__init__()
        leaky = partial(nn.LeakyReLU, 0.2)
        self.k, self.kind, self.image = k, kind, len(shape) == 3
        extra = k if kind == "concat" else 0
        if self.image:
            c, h, w = shape
            self.features = ConvEncoder((c + extra, h, w), hidden, channels=(32, 64), hidden=hidden, act=leaky)
        else:
            self.features = MLP(shape[0] + extra, hidden, (hidden,) * (depth - 1), act=leaky)
        self.act = leaky()
        self.out = nn.Linear(hidden, 1)
        if kind == "projection":
            self.embed = nn.Embedding(k + 1, hidden)
            nn.init.zeros_(self.embed.weight)  # start as an unconditional critic

    def _one_hot(self, y: Tensor, like: Tensor) -> Tensor:
        return F.one_hot(y, self.k + 1)[:, :self.k].to(like.dtype)  # label K (unknown): all zeros

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if self.kind == "concat":
            onehot = self._one_hot(y, x)
            if self.image:
                onehot = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, onehot], 1)
        phi = self.act(self.features(x))
        out = self.out(phi).squeeze(-1)
        if self.kind == "projection":
            out = out + (self.embed(y) * phi).sum(-1)
        return out


class ConditionalGenerator(nn.Module):
    """``(z: (batch, L), y: (batch,) in 0..K) -> (batch, D)`` or images: ``G([z, embed(y)])``."""

    def __init__(self, net: nn.Module, k: int, embed_dim: int):
        super().__init__()
        self.embed = nn.Embedding(k + 1, embed_dim)
        self.net = net

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.embed(y)], 1))


@register("cgan")
class CGAN(GANBase, Conditional):
    """Class-conditional GAN (projection or concat critic): ``sample(n, condition=labels)``."""
    taxonomy = "GAN"

    Config = CGANConfig
    default_epochs = 200

    def __init__(self, spec: DataSpec, config: CGANConfig):
        if spec.num_classes is None or spec.num_classes < 2:
            raise NotSupported("cgan: the data have no class labels (spec.num_classes is None); "
                               "use the unconditional gan family, or load labelled data")
        if config.embed_dim < 1:
            raise ValueError("cgan.embed_dim must be >= 1")
        super().__init__(spec, config)
        self.register_buffer("class_freq", torch.full((spec.num_classes,), 1.0 / spec.num_classes))

    def _build(self, spec: DataSpec, c: CGANConfig) -> tuple[nn.Module, nn.Module]:
        k, h, L = spec.num_classes, c.hidden, c.latent_dim + c.embed_dim
        net = (ConvDecoder(L, spec.event_shape, channels=(64, 32), hidden=h, act=nn.ReLU) if spec.is_image
               else MLP(L, spec.dim, (h,) * c.depth, act=nn.ReLU))
        return ConditionalGenerator(net, k, c.embed_dim), ConditionalCritic(spec.event_shape, k, h, c.depth, c.critic)

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        super().setup(x, y, x_val)
        if y is not None:
            y = torch.as_tensor(y, dtype=torch.long)
            if y.min() < 0 or y.max() >= self.spec.num_classes:
                raise ValueError(f"cgan: labels must lie in 0..{self.spec.num_classes - 1}")
            counts = torch.bincount(y.cpu(), minlength=self.spec.num_classes).to(self.class_freq)
            self.class_freq.copy_(counts / counts.sum())

    def _labels(self, batch: Batch) -> Tensor:
        if batch.y is None:  # unlabelled: the "unknown" label K
            return torch.full((len(batch.x),), self.spec.num_classes, dtype=torch.long,
                              device=batch.x.device)
        return batch.y.long()

    def _generate(self, code: Tensor, y: Tensor | None = None) -> Tensor:
        if y is None:
            y = torch.full((len(code),), self.spec.num_classes, dtype=torch.long, device=code.device)
        return self.generator(code, y).reshape(len(code), *self.spec.event_shape)

    def _logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if y is None:
            y = torch.full((len(z),), self.spec.num_classes, dtype=torch.long, device=z.device)
        return self.critic(z if self.spec.is_image else z.flatten(1), y)

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        code = self._noise(n, generator)  # noise first: the same seed gives the same z for any label
        if condition is None:
            condition = torch.multinomial(self.class_freq, n, replacement=True, generator=generator)
        with eval_mode(self.generator):
            return self._generate(code, condition)
