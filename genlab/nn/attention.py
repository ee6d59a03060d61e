"""A pre-LN causal transformer block with an optional key/value cache (Vaswani et al. 2017;
Radford et al. 2019).

Without a cache the block reads a whole sequence ``h: (batch, T, d)`` under a causal mask. With
a `KVCache` it reads only the new positions ``pos .. pos+L-1`` and attends to every key and value
the cache holds for the positions before them, so decoding a sequence one position at a time
costs one row of attention per position instead of the whole prefix again (incremental
decoding, as in GPT-2's ``past`` keys and values).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class KVCache:
    """Keys and values of one block for positions ``0 .. filled-1``: (batch, heads, T, head_dim) each.

    Args:
        batch: sequences decoded at once; heads, head_dim: the block's attention shape;
        length: the longest sequence (T); like: a tensor whose dtype and device the cache takes.
    """

    def __init__(self, batch: int, heads: int, length: int, head_dim: int, like: Tensor):
        self.k = like.new_zeros(batch, heads, length, head_dim)
        self.v = like.new_zeros(batch, heads, length, head_dim)
        self.filled = 0


class Block(nn.Module):
    """Pre-LN block: ``h + Attn(LN(h))`` then ``h + MLP(LN(h))``; h: (batch, T, d_model)."""

    def __init__(self, d: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d))
        self.drop = nn.Dropout(dropout)

    def new_cache(self, batch: int, length: int, like: Tensor) -> KVCache:
        """An empty `KVCache` for ``batch`` sequences of up to ``length`` positions."""
        d = self.qkv.in_features
        return KVCache(batch, self.heads, length, d // self.heads, like)

    def forward(self, h: Tensor, cache: KVCache | None = None) -> Tensor:
        """``h: (batch, L, d)`` -> (batch, L, d).

        Without ``cache``, ``h`` is a whole sequence from position 0 (causal attention). With it,
        ``h`` holds positions ``cache.filled .. cache.filled + L - 1``; their keys and values are
        written into the cache, which then counts them as filled.
        """
        b, t, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        if cache is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        else:
            start, end = cache.filled, cache.filled + t
            if end > cache.k.shape[2]:
                raise ValueError(f"KVCache: positions up to {end} do not fit a cache of {cache.k.shape[2]}")
            cache.k[:, :, start:end], cache.v[:, :, start:end] = k, v
            cache.filled = end
            keys, values = cache.k[:, :, :end], cache.v[:, :, :end]
            if t == 1:  # the newest position sees every cached one: no mask
                a = F.scaled_dot_product_attention(q, keys, values, dropout_p=drop)
            else:  # new position i sees cached positions 0 .. start + i
                mask = torch.ones(t, end, dtype=torch.bool, device=h.device).tril(start)
                a = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=drop)
        h = h + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        return h + self.drop(self.mlp(self.ln2(h)))
