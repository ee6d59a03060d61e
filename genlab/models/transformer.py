"""A small causal transformer (decoder-only, pre-LN; Vaswani et al. 2017, Radford et al. 2019).

A flattened example ``x: (batch, T)`` is a sequence: text token ids, the pixels of a discrete
image in raster order, or the coordinates of a continuous vector. The network reads
``[BOS, x_0, ..., x_{T-2}]`` and its output at position ``t`` parameterizes ``p(x_t | x_<t)``,
so ``log p(x) = sum_t log p(x_t | x_<t)`` is exact: a softmax over the levels / vocabulary for
discrete data, a mixture of Gaussians (standardized model space) for continuous data.

Attention is ``torch.nn.functional.scaled_dot_product_attention(..., is_causal=True)``.
Sampling is sequential, with a temperature; `sample_text` continues a prompt. Each block keeps the
keys and values of the positions already drawn (`genlab.nn.attention.KVCache`), so position ``t``
costs one new row of attention rather than a pass over the whole prefix: O(T) block evaluations
per sequence instead of O(T^2), the same draws as `conditionals` on the prefix (up to float
rounding) for the same generator.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..data.preprocess import Preprocess
from ..data.spec import DataSpec, Kind
from ..nn.attention import Block, KVCache
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

    def _inputs(self, z: Tensor) -> Tensor:
        """Embeddings of ``[BOS, z_0 .. z_{L-2}]``, the network's input for ``z: (batch, L)``: (batch, L, d)."""
        b = z.shape[0]
        if self.spec.kind is Kind.CONTINUOUS:
            return torch.cat([self.bos.expand(b, 1, -1), self.embed_value(z[:, :-1, None])], 1)
        ids = torch.cat([z.new_full((b, 1), self.spec.levels), z[:, :-1]], 1).long()
        return self.embed(ids)

    def conditionals(self, z: Tensor) -> Tensor:
        """Parameters of ``p(z_t | z_<t)`` for every position.

        Args:
            z: (batch, L) model-space values, ``1 <= L <= T`` (a prefix is enough).
        Returns:
            (batch, L, n_params); position ``t`` reads ``BOS, z_0 .. z_{t-1}`` only (``z_t`` and
            later never reach it: the input is shifted by one and attention is causal).
        """
        h = self._inputs(z) + self.pos[:z.shape[1]]
        for block in self.blocks:
            h = block(h)
        return self.out(self.ln(h))

    def _extend(self, h: Tensor, caches: list[KVCache]) -> Tensor:
        """Output parameters of the positions ``h: (batch, L, d)`` (embedded, with their positions)
        after the cached ones, whose keys and values ``caches`` (one per block) hold: (batch, L, n_params)."""
        for block, cache in zip(self.blocks, caches):
            h = block(h, cache)
        return self.out(self.ln(h))

    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        flat = z.flatten(1)
        return self.head.log_prob(flat, self.conditionals(flat)).sum(1)

    def objectives(self) -> list[Objective]:
        return [Objective("nll", list(self.parameters()), self.nll_loss)]

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None, prefix: Tensor | None = None) -> Tensor:
        """T sequential positions with a key/value cache; ``prefix: (n, P)`` model-space values
        fixes the first P entries (read in one pass, then cached)."""
        p = self.pos
        z = torch.zeros(n, self.length, dtype=p.dtype, device=p.device)
        caches = [block.new_cache(n, self.length, p) for block in self.blocks]
        start = 0 if prefix is None else prefix.shape[1]
        if start:
            z[:, :start] = prefix
        # positions 0 .. start read BOS and the prefix in one pass: the last one's output is p(z_start | prefix)
        params = self._extend(self._inputs(z[:, :start + 1]) + p[:start + 1], caches)[:, -1]
        for t in range(start, self.length):
            if t > start:  # the entry drawn last is the input of position t
                params = self._extend(self._next_input(z[:, t - 1]) + p[t], caches)[:, 0]
            z[:, t] = self.head.sample(params, generator, self.config.temperature)
        return z.reshape(n, *self.spec.event_shape)

    def _next_input(self, z_prev: Tensor) -> Tensor:
        """The embedding of one drawn entry ``z_prev: (batch,)`` as the next position's input: (batch, 1, d)."""
        if self.spec.kind is Kind.CONTINUOUS:
            return self.embed_value(z_prev[:, None, None])
        return self.embed(z_prev[:, None].long())

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
