"""Bits-back ANS for latent-variable models (Townsend, Bird & Barber 2019, "Practical lossless
compression with latent variables using bits back coding", ICLR 2019).

Per example ``x`` (data space: integer levels) with the `genlab.protocol.LatentVariable` pieces
``q(y|x)``, ``p(y)``, ``p(x|y)`` (vae, iwae):

* encode: *decode* a latent ``y ~ q(y|x)`` from the ANS stack (taking ``-log q(y|x)`` bits off
  it), encode ``x`` under ``p(x|y)``, encode ``y`` under ``p(y)``;
* decode: the reverse: decode ``y`` under ``p(y)``, decode ``x`` under ``p(x|y)``, *encode* ``y``
  under ``q(y|x)`` (giving the borrowed bits back).

The net cost of an example is ``-log p(x|y) - log p(y) + log q(y|x)``, the one-sample -ELBO.
Gaussian latents are discretized into ``2^B`` buckets of equal mass under the prior ``N(0, 1)``
(as in that paper): the prior over buckets is uniform (``B`` bits per latent), the posterior
assigns each bucket its mass under ``N(mu, sigma^2)``, and the decoder reads the bucket's
median. Bernoulli and categorical latents are coded as they are (uniform priors).

Initial bits: the first example has nothing to borrow from, so the stack starts with ``w``
words drawn from ``numpy.random.default_rng(seed)``: enough for the bits that the first
example's latents take, ``-log2 q(y_1|x_1)``, plus 64 (measured on a trial decode; the encoder
starts again with two more words if a later chunk finds fewer than 64 bits left). Only the words
the latents took are paid: those still untouched at the bottom of the final stack are left out
of the file (the decoder draws them from the seed again). Over ``n`` examples of ``D`` entries
that is about ``-log2 q(y_1|x_1) / (n D)`` bits per dimension, paid once; every later example
borrows from the bits of the examples before it.

Examples are coded in chunks whose size the encoder picks from the bits on the stack (1.5 times
the most bits one example's latents have taken so far, per example, rounded down to a power of
2; a chunk that would leave fewer than 64 bits is retried as one example), starting at one
example and growing with the stack up to ``max_chunk``; the header records the chunk sizes (as
run lengths) and ``w``. Within a chunk the networks run batched, with the same batch on both
sides, so that the floats agree. At the end the decoder must find the initial words again: a
last check of the whole file.
"""
from __future__ import annotations

import itertools
import math

import constriction
import numpy as np
import torch
from torch import Tensor

from ..objectives.elbo import discretized_logistic_log_lik
from ..objectives.latents import BernoulliLatent, CategoricalLatent, GaussianLatent
from ..protocol import LatentVariable, NotSupported

MARGIN = 64  # bits that must stay on the stack after decoding a chunk's latents
BUCKET_BITS = 12  # 4,096 equal-mass prior buckets per Gaussian latent


def check(model: LatentVariable) -> None:
    """Raise `NotSupported` unless the decoder's likelihood is discrete (bits-back codes ``x`` under it)."""
    if model.likelihood not in ("bernoulli", "logistic"):
        raise NotSupported(f"{model.name}: bits-back coding needs a discrete decoder likelihood (bernoulli or "
                           f"discretized logistic), this model's is {model.likelihood!r}")


def _latent_symbols(model: LatentVariable) -> tuple[int, int]:
    """(latent symbols per example, values per symbol)."""
    lat = model.latent
    if isinstance(lat, CategoricalLatent):
        return lat.L, lat.K
    if isinstance(lat, BernoulliLatent):
        return lat.L, 2
    return lat.L, 2 ** BUCKET_BITS


class _Pieces:
    """The model's distributions as float64 probability tables, computed for one chunk at a time."""

    def __init__(self, model: LatentVariable, bucket_bits: int):
        self.model, self.spec, self.lat = model, model.spec, model.latent
        self.n_lat, self.k_lat = _latent_symbols(model)
        if isinstance(self.lat, GaussianLatent):
            u = torch.arange(2 ** bucket_bits + 1, dtype=torch.float64) / 2 ** bucket_bits
            self.edges = torch.special.ndtri(u)  # -inf .. inf
            self.centres = torch.special.ndtri((torch.arange(2 ** bucket_bits, dtype=torch.float64) + 0.5)
                                               / 2 ** bucket_bits)

    def _model_space(self, sym: np.ndarray) -> tuple[Tensor, Tensor | None]:
        x = torch.from_numpy(sym).to(self.model._some_tensor().dtype).reshape(len(sym), *self.spec.event_shape)
        return self.model.pre(x)[0], self.model.labels(None, len(sym))

    def posterior(self, sym: np.ndarray) -> np.ndarray:
        """q over each latent symbol of each example: (m * n_lat, k_lat)."""
        z, labels = self._model_space(sym)
        params = self.model.encoder_params(z, labels).double()
        if isinstance(self.lat, GaussianLatent):
            mu, logvar = self.lat.split(params)
            sd = (0.5 * logvar).exp().reshape(-1, 1)
            lo = (self.edges[:-1] - mu.reshape(-1, 1)) / sd
            hi = (self.edges[1:] - mu.reshape(-1, 1)) / sd
            mass = torch.where(lo > 0, torch.special.ndtr(-lo) - torch.special.ndtr(-hi),
                               torch.special.ndtr(hi) - torch.special.ndtr(lo))
            return mass.clamp_min(0).numpy()
        if isinstance(self.lat, BernoulliLatent):
            logits = params.reshape(-1)
            return torch.stack([torch.sigmoid(-logits), torch.sigmoid(logits)], 1).numpy()
        return torch.softmax(params.reshape(-1, self.k_lat), -1).numpy()

    def codes(self, lat_sym: np.ndarray, m: int) -> Tensor:
        """Latent symbols (m * n_lat,) -> the decoder's codes (m, code_dim)."""
        s = torch.from_numpy(lat_sym.astype(np.int64))
        dtype = self.model._some_tensor().dtype
        if isinstance(self.lat, GaussianLatent):
            return self.centres[s].to(dtype).reshape(m, -1)
        if isinstance(self.lat, BernoulliLatent):
            return s.to(dtype).reshape(m, -1)
        return torch.nn.functional.one_hot(s, self.k_lat).to(dtype).reshape(m, -1)

    def likelihood(self, codes: Tensor) -> np.ndarray:
        """p(x_d | y) for every entry: (m * D, levels)."""
        m = len(codes)
        out = self.model.decoder_output(codes, self.model.labels(None, m)).double().reshape(-1, 1)
        if self.model.likelihood == "bernoulli":
            return torch.cat([torch.sigmoid(-out), torch.sigmoid(out)], 1).numpy()
        L = self.spec.levels
        centres = -1 + 2 * torch.arange(L, dtype=torch.float64)[None] / (L - 1)
        log_scale = self.model.log_scale().double().reshape(1, -1).expand(m, -1).reshape(-1, 1)
        lp = discretized_logistic_log_lik(centres, out, log_scale, L)
        return torch.softmax(lp, 1).numpy()


def _initial_words(k: int, seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).integers(1, 2 ** 32, size=k, dtype=np.uint64).astype(np.uint32)
    w[-1] |= np.uint32(1 << 31)  # a full top word: the coder's state starts large
    return w


def _bits(p: np.ndarray, s: np.ndarray) -> float:
    return float(-np.log2(p[np.arange(len(s)), s] / p.sum(1)).sum())


class _Starved(Exception):
    """The stack held too few bits to decode a latent: start again with more initial words."""


def encode(model: LatentVariable, sym: np.ndarray, seed: int = 0, max_chunk: int = 32) -> tuple[np.ndarray, float, dict]:
    """Words for ``sym`` (n, D) integer levels, the ideal net bits (sum over examples of
    ``-log2 p(x|y) - log2 p(y) + log2 q(y|x)`` at the drawn ``y``), and header fields."""
    check(model)
    k = _first_need(model, sym[:1], seed)
    while True:
        try:
            return _encode(model, sym, seed, k, max_chunk)
        except _Starved:
            k += 2


def _first_need(model: LatentVariable, first: np.ndarray, seed: int) -> int:
    """Initial words for the first example: the bits its latents take off a stack that has
    plenty (at most 24 per symbol), plus `MARGIN`, in words."""
    pieces = _Pieces(model, BUCKET_BITS)
    coder = constriction.stream.stack.AnsCoder(_initial_words(math.ceil(24 * pieces.n_lat / 32) + 4, seed))
    start = coder.num_valid_bits()
    coder.decode(constriction.stream.model.Categorical(perfect=False), pieces.posterior(first))
    return max(2, math.ceil((start - coder.num_valid_bits() + MARGIN) / 32) + 1)


def _encode(model: LatentVariable, sym: np.ndarray, seed: int, k: int, max_chunk: int) -> tuple[np.ndarray, float, dict]:
    bb = BUCKET_BITS
    pieces = _Pieces(model, bb)
    fam = constriction.stream.model.Categorical(perfect=False)
    prior = constriction.stream.model.Uniform(pieces.k_lat)
    coder = constriction.stream.stack.AnsCoder(_initial_words(k, seed))
    chunks, at, ideal = [], 0, 0.0
    taken = pieces.n_lat * math.log2(pieces.k_lat)  # bits one example's latents take off the stack (running max)
    while at < len(sym):
        room = max(1, int((coder.num_valid_bits() - MARGIN) // (1.5 * taken)))
        m = min(max_chunk, len(sym) - at, 1 << (room.bit_length() - 1))  # powers of 2: few runs to record
        while True:
            x, before = sym[at:at + m], coder.clone()
            q = pieces.posterior(x)
            y = coder.decode(fam, q)  # take bits off the stack: y ~ q(y|x)
            if coder.num_valid_bits() >= MARGIN:
                break
            if m == 1:
                raise _Starved
            coder, m = before, 1
        taken = max(taken, (before.num_valid_bits() - coder.num_valid_bits()) / m)
        px = pieces.likelihood(pieces.codes(y, m))
        xs = np.ascontiguousarray(x.reshape(-1), dtype=np.int32)
        coder.encode_reverse(xs, fam, px)
        coder.encode_reverse(y.astype(np.int32), prior)
        ideal += _bits(px, xs) + len(y) * math.log2(pieces.k_lat) - _bits(q, y)
        chunks.append(m)
        at += m
    words, init = coder.get_compressed(), _initial_words(k, seed)
    j = 0  # initial words still at the bottom of the stack: the decoder makes them itself
    while j < min(k, len(words) - 1) and words[j] == init[j]:
        j += 1
    runs = [[m, len(list(g))] for m, g in itertools.groupby(chunks)]  # run lengths: a short header
    return words[j:], ideal, {"chunks": runs, "seed": seed, "bucket_bits": bb, "initial_words": k, "implied": j}


def decode(model: LatentVariable, words: np.ndarray, n: int, header: dict) -> np.ndarray:
    """The (n, D) symbols of `encode`'s words; ValueError if the file does not decode cleanly."""
    check(model)
    try:
        chunks = [int(m) for m, count in header["chunks"] for _ in range(int(count))]
    except (KeyError, TypeError, ValueError):
        raise ValueError("bits-back header has no valid chunk sizes; the file is damaged") from None
    if sum(chunks) != n or header.get("bucket_bits") != BUCKET_BITS:
        raise ValueError("bits-back header is inconsistent (chunk sizes or bucket bits); the file is damaged")
    pieces = _Pieces(model, int(header["bucket_bits"]))
    fam = constriction.stream.model.Categorical(perfect=False)
    prior = constriction.stream.model.Uniform(pieces.k_lat)
    k, j = int(header.get("initial_words", -1)), int(header.get("implied", -1))
    if not 0 <= j <= k:
        raise ValueError("bits-back header is inconsistent (initial words); the file is damaged")
    init = _initial_words(k, int(header["seed"]))
    try:
        coder = constriction.stream.stack.AnsCoder(np.concatenate([init[:j], words]))
    except Exception as e:  # constriction rejects a word sequence no encoder can end with
        raise ValueError(f"compressed words are not a valid ANS stack ({e}); the file is damaged") from None
    sym = np.zeros((n, model.spec.dim), dtype=np.int64)
    end = n
    for m in reversed(chunks):
        y = coder.decode(prior, m * pieces.n_lat)
        x = coder.decode(fam, pieces.likelihood(pieces.codes(y, m))).reshape(m, -1)
        sym[end - m:end] = x
        coder.encode_reverse(y.astype(np.int32), fam, pieces.posterior(x.astype(np.int64)))
        end -= m
    if not np.array_equal(coder.get_compressed(), init):
        raise ValueError("bits-back decoding did not end on the initial words: the file does not belong to this "
                         "model, or the floats differ from compression; decompress with the run that compressed it")
    return sym


def neg_elbo(model: LatentVariable, sym: np.ndarray, samples: int = 8, seed: int = 0, batch: int = 100) -> float:
    """Total ``-ELBO`` in nats over the examples: exact KL plus the reconstruction term averaged
    over ``samples`` posterior draws (the figure bits-back coding approaches)."""
    g = torch.Generator().manual_seed(seed)
    pieces, total = _Pieces(model, BUCKET_BITS), 0.0
    for i in range(0, len(sym), batch):
        z, labels = pieces._model_space(sym[i:i + batch])
        params = model.encoder_params(z, labels)
        codes = model.latent.sample(params, samples, g)
        rec = model.decoder_log_lik(z, model.decoder_output(codes, labels)).double().mean(0)
        total -= float((rec - model.latent.kl(params).double()).sum())
    return total
