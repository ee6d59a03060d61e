"""A small causal transformer (decoder-only, pre-LN; Vaswani et al. 2017, Radford et al. 2019).

A flattened example ``x: (batch, T)`` is a sequence: text token ids, the pixels of a discrete
image in raster order, or the coordinates of a continuous vector. The network reads
``[BOS, x_0, ..., x_{T-2}]`` and its output at position ``t`` parameterizes ``p(x_t | x_<t)``,
so ``log p(x) = sum_t log p(x_t | x_<t)`` is exact: a softmax over the levels / vocabulary for
discrete data, a mixture of Gaussians (standardized model space) for continuous data.

Attention is ``torch.nn.functional.scaled_dot_product_attention(..., is_causal=True)``.
Sampling is sequential (T passes), with a temperature; `sample_text` continues a prompt.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.preprocess import Preprocess
from ..data.spec import DataSpec, Kind
from ..protocol import register, Autoregressive, Density, GenerativeModel, Objective
from ._autoregressive import check_temperature, make_head, make_preprocess


@dataclass
class TransformerConfig:
    d_model: int = field(default=128, metadata={"help": "width of the residual stream"})
    n_layers: int = field(default=4, metadata={"max": 1_000, "help": "number of transformer blocks"})
    n_heads: int = field(default=4, metadata={"help": "attention heads per block (must divide d_model)"})
    mlp_ratio: int = field(default=4, metadata={"help": "hidden width of each MLP = mlp_ratio * d_model"})
    dropout: float = field(default=0.0, metadata={"help": "dropout on attention and MLP outputs (training)"})
    components: int = field(default=10, metadata={
        "help": "Gaussians per position in the mixture output (continuous data only)"})
    temperature: float = field(default=1.0, metadata={
        "help": "sampling temperature (softmax logits / T; Gaussian scales * T); 1 = the model"})


class Block(nn.Module):
    """Pre-LN block: ``h + Attn(LN(h))`` then ``h + MLP(LN(h))``; h: (batch, T, d_model)."""

    def __init__(self, d: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        b, t, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        h = h + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        return h + self.drop(self.mlp(self.ln2(h)))


@register("transformer")
class Transformer(GenerativeModel, Autoregressive):
    """Decoder-only transformer over flattened examples (text, raster-order pixels, coordinates)."""
    taxonomy = "autoregressive"

    Config = TransformerConfig
    density = Density.EXACT
    sampling = "slow"
    training = "MLE"
    default_epochs = 100
    default_train = {"lr_schedule": "cosine", "lr": 5e-4}

    def __init__(self, spec: DataSpec, config: TransformerConfig):
        super().__init__(spec, config)
        c = config
        if c.d_model < 1 or c.n_layers < 1 or c.n_heads < 1 or c.mlp_ratio < 1 or not 0 <= c.dropout < 1:
            raise ValueError("transformer: d_model, n_layers, n_heads and mlp_ratio must be >= 1, "
                             "dropout in [0, 1)")
        if c.d_model % c.n_heads:
            raise ValueError(f"transformer: n_heads={c.n_heads} must divide d_model={c.d_model}")
        check_temperature(c.temperature)
        self.head = make_head(spec, c.components)
        d, self.length = c.d_model, spec.dim
        if spec.kind is Kind.CONTINUOUS:
            self.embed_value = nn.Linear(1, d)
            self.bos = nn.Parameter(torch.zeros(d))
        else:  # token ids 0..levels-1, and `levels` itself = beginning of sequence
            self.embed = nn.Embedding(spec.levels + 1, d)
            nn.init.normal_(self.embed.weight, std=0.02)
        self.pos = nn.Parameter(0.02 * torch.randn(self.length, d))
        self.blocks = nn.ModuleList(Block(d, c.n_heads, c.mlp_ratio, c.dropout) for _ in range(c.n_layers))
        self.ln = nn.LayerNorm(d)
        self.out = nn.Linear(d, self.head.n_params)

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        return make_preprocess(spec)

    def ar_orders(self) -> Tensor:
        return torch.arange(self.spec.dim)[None]

    def entry_params(self, z: Tensor, k: int = 0) -> Tensor:
        return self.conditionals(z.flatten(1))

    def conditionals(self, z: Tensor) -> Tensor:
        """Parameters of ``p(z_t | z_<t)`` for every position.

        Args:
            z: (batch, L) model-space values, ``1 <= L <= T`` (a prefix is enough).
        Returns:
            (batch, L, n_params); position ``t`` reads ``BOS, z_0 .. z_{t-1}`` only (``z_t`` and
            later never reach it: the input is shifted by one and attention is causal).
        """
        b, L = z.shape
        if self.spec.kind is Kind.CONTINUOUS:
            h = torch.cat([self.bos.expand(b, 1, -1), self.embed_value(z[:, :-1, None])], 1)
        else:
            ids = torch.cat([z.new_full((b, 1), self.spec.levels), z[:, :-1]], 1).long()
            h = self.embed(ids)
        h = h + self.pos[:L]
        for block in self.blocks:
            h = block(h)
        return self.out(self.ln(h))

    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        flat = z.flatten(1)
        return self.head.log_prob(flat, self.conditionals(flat)).sum(1)

    def objectives(self) -> list[Objective]:
        return [Objective("nll", list(self.parameters()), self.nll_loss)]

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None, prefix: Tensor | None = None) -> Tensor:
        """T sequential passes; ``prefix: (n, P)`` model-space values fixes the first P entries."""
        p = self.pos
        z = torch.zeros(n, self.length, dtype=p.dtype, device=p.device)
        start = 0
        if prefix is not None:
            start = prefix.shape[1]
            z[:, :start] = prefix
        for t in range(start, self.length):
            params = self.conditionals(z[:, :t + 1])[:, t]
            z[:, t] = self.head.sample(params, generator, self.config.temperature)
        return z.reshape(n, *self.spec.event_shape)

    @torch.no_grad()
    def sample_text(self, n: int = 1, prompt: str = "", *,
                    generator: torch.Generator | None = None) -> list[str]:
        """``n`` continuations of ``prompt``, each ``T`` characters long (prompt included).

        Characters of the prompt outside the vocabulary become the unknown character.
        """
        from ..data.text import vocab_of
        vocab = vocab_of(self.spec)
        if len(prompt) >= self.length:
            raise ValueError(f"sample_text: the prompt has {len(prompt)} characters; this model "
                             f"writes sequences of {self.length}, so the prompt must be shorter")
        if n < 1:
            raise ValueError(f"sample_text: n must be >= 1, got {n}")
        prefix = vocab.encode(prompt).to(self.pos).expand(n, -1) if prompt else None
        ids = self._sample(n, generator=generator, prefix=prefix)
        return [vocab.decode(row) for row in ids]
