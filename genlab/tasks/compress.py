"""Lossless compression with a trained model: entropy coding with `constriction`'s ANS coder.

`compress(model, x) -> bytes` and `decompress(model, data) -> Tensor` for discrete data (integer
levels), by what the model offers (its capabilities, never its family name):

* ``chain`` (exact models, one entry at a time): ``P(x) = prod_d P(x_d | x_<d)``, each
  conditional a categorical over the levels, coded with ANS (Duda 2009) through
  ``constriction.stream.model.Categorical(perfect=False)``:

  - autoregressive models (the `genlab.protocol.Autoregressive` capability: ``entry_params``
    gives each entry's parameters for ``head.log_prob``: made (ordering 0), pixelcnn,
    transformer): the network runs on the partially filled input once per entry,
    batched over the examples;
  - exact discrete chain rules (the `genlab.protocol.DiscreteChainRule` capability: bayesnet's
    CPT row of each variable given its parents, in topological order);
  - Gaussians / mixtures (`GaussianMixtureForm`) over dequantized levels: a discrete model
    derived from the density, ``Q(x_d = k | x_<d)`` = the mass of bin ``k`` (in model space,
    edge bins open) under the exact conditional mixture of ``z_d`` given the bin centres of
    ``x_<d`` (Bishop 2006, eqs. 2.81-2.82 via the Cholesky factor). Each conditional is
    normalized, so Q is a proper distribution. Its code length is often below the density's
    dequantized bound (which `measure` reports beside it): that bound pays Jensen's gap over
    the dequantization noise, large for strongly correlated entries.

* ``bits-back`` (the `genlab.protocol.LatentVariable` capability: vae, iwae; an encoder
  ``q(y|x)``, a prior and a discrete decoder likelihood): bits-back ANS (Townsend, Bird & Barber
  2019), see `genlab.tasks.bitsback`.

Other families raise `NotSupported` with the reason (no exact or bounded discrete probabilities:
flows and diffusion over dequantized data, GANs, energies; continuous data).

Bit-exactness: the encoder computes every probability through the same function, on the same
partially filled tensor, with the same batch, as the decoder, on one thread (set for the call),
so both sides see identical floats; constriction quantizes them deterministically. The file
(`codec_format`) records the model's weight fingerprint and checksums of the words and the data.
Decoding on another CPU kind or torch build may compute other floats: the final checksum then
raises instead of returning wrong data.
"""
from __future__ import annotations

import math
import platform
import time
from contextlib import contextmanager
from typing import Callable

import constriction
import numpy as np
import torch
from torch import Tensor

from ..data.preprocess import Standardize
from ..data.validate import check_memory
from ..protocol import (Density, DiscreteChainRule, GaussianMixtureForm, GenerativeModel, LatentVariable,
                        NotSupported)
from . import bitsback
from .codec_format import check_model, data_digest, fingerprint, pack, unpack
from .impute_ar import ar_view

Step = Callable[[np.ndarray, int], np.ndarray]  # (partial symbols (n, D), entry d) -> probs (n, K)


def _family():
    return constriction.stream.model.Categorical(perfect=False)


@contextmanager
def _coding(model: GenerativeModel):
    """One thread, eval mode, no gradients: the floats then do not depend on the thread count."""
    threads, training = torch.get_num_threads(), model.training
    torch.set_num_threads(1)
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_num_threads(threads)
        model.train(training)


def method_for(model: GenerativeModel) -> str:
    """``chain`` or ``bits-back`` for ``model``, or raise `NotSupported` with the reason."""
    spec = model.spec
    if not spec.is_discrete:
        raise NotSupported(f"{model.name}: lossless coding needs discrete data; these are continuous. "
                           "Quantize them to integer levels and train on those")
    if isinstance(model, LatentVariable):
        bitsback.check(model)
        return "bits-back"
    if model.density is not Density.EXACT:
        raise NotSupported(f"{model.name}: density is '{model.density.value}'; entropy coding needs exact "
                           "probabilities (an exact model) or a latent-variable model's encoder and decoder "
                           "(bits-back)")
    _chain_steps(model)  # raises NotSupported if no chain rule is available
    return "chain"


# -- the chain rule, one entry at a time ---------------------------------------------------------
def _chain_steps(model: GenerativeModel) -> tuple[list[int], Step]:
    """The coding order and the conditional of one entry given the entries before it."""
    if isinstance(model, DiscreteChainRule):
        return model.chain_order(), model.chain_conditional
    if isinstance(model, GaussianMixtureForm):
        return _mixture_steps(model)
    view = ar_view(model)
    if view is not None:
        return _autoregressive_steps(model, view)
    raise NotSupported(f"{model.name}: its exact density has no chain rule that genlab can evaluate one entry "
                       "at a time (autoregressive conditionals, a discrete chain rule or a Gaussian mixture)")


def _autoregressive_steps(model: GenerativeModel, view) -> tuple[list[int], Step]:
    """Entry ``d``'s categorical from ``head.log_prob`` at every level, with the network run on
    the partially filled example, in the model's ordering (`impute_ar.ar_view`: ordering 0 of a
    MADE, raster order with channels inner for a PixelCNN, index order for a transformer)."""
    orders, params_fn = view
    spec, D, L = model.spec, model.spec.dim, model.spec.levels
    shape = tuple(spec.event_shape)
    levels = torch.arange(L, dtype=torch.float32).repeat_interleave(D).reshape(L, *shape)
    values = model.pre(model.check_input(levels))[0].reshape(L, D)  # level k of entry d, model space

    def step(partial: np.ndarray, d: int) -> np.ndarray:
        x = torch.from_numpy(partial).to(values.dtype).reshape(len(partial), *shape)
        params = params_fn(model.pre(x)[0].reshape(len(x), D), 0)[:, d]  # (n, P)
        lp = model.head.log_prob(values[:, d].expand(len(x), L), params[:, None].expand(-1, L, -1))
        return torch.softmax(lp.double(), -1).numpy()  # renormalizes the head's own rounding
    return orders[0].tolist(), step


def _mixture_steps(model: GenerativeModel) -> tuple[list[int], Step]:
    """Natural order; bin masses of the conditional Gaussian mixture of entry ``d`` given the
    bin centres of the entries before it (float64 throughout)."""
    pre = model.pre
    if not (isinstance(pre, Standardize) and pre.dequantize):
        raise NotSupported(f"{model.name}: the mixture is not over dequantized levels, so it has no "
                           "discrete distribution to code with")
    logw, mu, tril = (t.detach().double() for t in model.mixture())
    K, D = mu.shape
    L = model.spec.levels
    inv = torch.linalg.solve_triangular(tril, torch.eye(D, dtype=tril.dtype).expand(K, D, D), upper=False)
    mean, std = pre.mean.double().reshape(D), pre.std.double().reshape(D)
    edges = torch.arange(L + 1, dtype=torch.float64) / L
    edges[0], edges[-1] = -math.inf, math.inf
    diag = tril.diagonal(dim1=1, dim2=2)

    def step(partial: np.ndarray, d: int) -> np.ndarray:
        z = ((torch.from_numpy(partial[:, :d]).double() + 0.5) / L - mean[:d]) / std[:d]  # (n, d)
        eps = torch.einsum("nkj,kij->nki", z[:, None] - mu[:, :d], inv[:, :d, :d])    # L_k^-1 (z - mu_k)
        cm = mu[:, d] + torch.einsum("nkj,kj->nk", eps, tril[:, d, :d])               # (n, K)
        resp = torch.softmax(logw - 0.5 * eps.square().sum(2) - diag[:, :d].log().sum(1), 1)
        lo = (((edges[:-1] - mean[d]) / std[d])[None, None] - cm[..., None]) / diag[:, d, None]
        hi = (((edges[1:] - mean[d]) / std[d])[None, None] - cm[..., None]) / diag[:, d, None]
        mass = torch.where(lo > 0, torch.special.ndtr(-lo) - torch.special.ndtr(-hi),
                           torch.special.ndtr(hi) - torch.special.ndtr(lo))
        return (resp[..., None] * mass.clamp_min(0)).sum(1).numpy()
    return list(range(D)), step


def _floor(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Normalized rows mixed with ``eps`` of the uniform: no symbol has probability 0 (a bin far in
    a Gaussian's tail underflows), and the ideal code length stays finite. (n, K) float64."""
    p = np.asarray(p, dtype=np.float64)
    return np.ascontiguousarray((1 - eps) * p / p.sum(1, keepdims=True) + eps / p.shape[1])


def _chain_encode(order: list[int], step: Step, sym: np.ndarray) -> tuple[np.ndarray, float]:
    """Words that decode to ``sym`` (n, D), and the ideal code length in bits (sum of -log2 p)."""
    partial = np.zeros_like(sym)
    probs = []
    for d in order:
        probs.append(_floor(step(partial, d)))
        partial[:, d] = sym[:, d]
    coder, fam, bits = constriction.stream.stack.AnsCoder(), _family(), 0.0
    for d, p in zip(reversed(order), reversed(probs)):  # a stack: the last pushed decodes first
        s = np.ascontiguousarray(sym[:, d], dtype=np.int32)
        coder.encode_reverse(s, fam, p)
        bits -= float(np.log2(p[np.arange(len(s)), s]).sum())
    return coder.get_compressed(), bits


def _chain_decode(order: list[int], step: Step, words: np.ndarray, n: int, D: int) -> np.ndarray:
    try:
        coder, fam = constriction.stream.stack.AnsCoder(words), _family()
    except Exception as e:  # constriction rejects a word sequence no encoder can end with
        raise ValueError(f"compressed words are not a valid ANS stack ({e}); the file is damaged") from None
    sym = np.zeros((n, D), dtype=np.int64)
    for d in order:
        sym[:, d] = coder.decode(fam, _floor(step(sym, d)))
    if not coder.is_empty():
        raise ValueError("the compressed words were not used up by decoding: the file does not belong to this "
                         "model or data shape; decompress with the run that compressed it")
    return sym


# -- public API -------------------------------------------------------------------------------------
def _exact_levels(x: Tensor | np.ndarray) -> None:
    """Refuse float input that is not exactly integral, or a negative zero: the decoder returns
    integer levels, so such a value would not come back as it went in (3.0000001 as 3, -0.0 as 0)."""
    if isinstance(x, Tensor):
        if not x.is_floating_point():
            return
        a = x.detach().cpu().double().numpy()
    elif isinstance(x, np.ndarray) and x.dtype.kind == "f":
        a = x.astype(np.float64)
    else:
        return
    bad = np.isfinite(a) & ((a != np.round(a)) | ((a == 0) & np.signbit(a)))
    if bad.any():
        where = np.unravel_index(int(np.argmax(bad)), a.shape)
        v = a[where]
        what = "a negative zero (-0.0)" if v == 0 else f"{v!r}, not a whole number"
        raise ValueError(f"compress codes integer levels exactly, but x holds {what} at index "
                         f"{tuple(int(i) for i in where)} ({int(bad.sum())} such value(s)); decompress would "
                         f"return a different number. Round the data first (np.rint, and + 0.0 for -0.0) if "
                         f"that is what you mean, or pass integers")


def _symbols(model: GenerativeModel, x: Tensor | np.ndarray) -> np.ndarray:
    method_for(model)
    _exact_levels(x)
    xt = model.check_input(x)  # shape and levels 0..L-1, or a clear ValueError
    return xt.reshape(len(xt), -1).cpu().numpy().astype(np.int64)


def _encode(model: GenerativeModel, x, seed: int, note: dict | None = None) -> tuple[bytes, dict]:
    sym = _symbols(model, x)
    method = method_for(model)
    header = {"family": model.name, "model_sha256": fingerprint(model), "method": method, "n": len(sym),
              "event_shape": list(model.spec.event_shape), "data_sha256": data_digest(sym),
              "torch": torch.__version__, "machine": platform.machine(), "note": note or {}}
    with _coding(model):
        if method == "chain":
            words, ideal = _chain_encode(*_chain_steps(model), sym)
            extra = {}
        else:
            words, ideal, extra = bitsback.encode(model, sym, seed)
    header.update(extra)
    return pack(header, words), {"ideal_bits": ideal, "payload_bits": 32 * len(words)}


def compress(model: GenerativeModel, x: Tensor | np.ndarray, *, seed: int = 0, note: dict | None = None) -> bytes:
    """The bytes of a self-describing compressed file of ``x``.

    Args:
        model: a trained model over discrete data (see the module docstring for which).
        x: (n, *event_shape) or (n, D) integer levels ``0..levels-1``.
        seed: seed of the bits-back coder's initial words (latent-variable models; recorded in the file).
        note: JSON-able facts to keep in the header (the CLI keeps the input array's dtype
            and shape there); `read_header` returns them.
    """
    return _encode(model, x, seed, note)[0]


def read_header(data: bytes) -> dict:
    """The JSON header of a compressed file (checked like `decompress` does)."""
    return unpack(data)[0]


def decompress(model: GenerativeModel, data: bytes) -> Tensor:
    """The examples ``compress(model, x)`` coded: (n, *event_shape), bit-exact, in the model's
    float dtype. Raises ValueError for another model, a corrupted or truncated file."""
    header, words = unpack(data)
    check_model(header, model.name, fingerprint(model))
    n, shape = int(header["n"]), tuple(header["event_shape"])
    if shape != tuple(model.spec.event_shape):
        raise ValueError(f"file holds examples of shape {shape}, the model's are {tuple(model.spec.event_shape)}")
    check_memory(n * model.spec.dim, 8, f"the file's {n:,} examples")  # before allocating what it claims
    with _coding(model):
        try:
            if header.get("method") == "chain":
                sym = _chain_decode(*_chain_steps(model), words, n, model.spec.dim)
            elif header.get("method") == "bits-back":
                sym = bitsback.decode(model, words, n, header)
            else:
                raise ValueError(f"unknown coding method {header['method']!r} in the file's header")
        except (KeyError, TypeError, IndexError, OverflowError) as e:  # fields of a damaged version-1 header
            raise ValueError(f"compressed file has a damaged header ({type(e).__name__}: {e}); the file is "
                             "damaged, copy it again") from None
    if data_digest(sym) != header["data_sha256"]:
        raise ValueError("decoded data fail the file's checksum: the model computed other floats than at "
                         f"compression (compressed with torch {header.get('torch')} on {header.get('machine')}); "
                         "decompress with the same genlab, torch and CPU kind")
    return torch.from_numpy(sym).to(model._some_tensor().dtype).reshape(n, *shape)


def measure(model: GenerativeModel, x: Tensor | np.ndarray, *, seed: int = 0, nll_samples: int = 8) -> dict:
    """Actual compressed size beside the model's own figure, in bits per dimension.

    Returns a dict: ``bits_per_dim`` (the whole file: header and words), ``payload_bits_per_dim``
    (the words), ``ideal_bits_per_dim`` (sum of -log2 of the coded probabilities: chain coding's
    information content; for bits-back the ideal net cost of each example), ``nll_bits_per_dim``
    (the model's -log p(x) from ``log_prob``; for latent-variable models the -ELBO averaged over
    ``nll_samples`` draws), ``method``, ``bytes``, and the seconds to compress and to decompress (checked equal).
    """
    sym = _symbols(model, x)
    n, D = sym.shape
    t0 = time.perf_counter()
    data, info = _encode(model, sym, seed)
    t1 = time.perf_counter()
    back = decompress(model, data)
    t2 = time.perf_counter()
    if not np.array_equal(back.reshape(n, -1).numpy().astype(np.int64), sym):
        raise RuntimeError("round trip is not exact")  # decompress's checksum makes this unreachable
    with _coding(model):
        if isinstance(model, LatentVariable):
            nll = bitsback.neg_elbo(model, sym, nll_samples, seed)
        else:
            xt = torch.from_numpy(sym).to(model._some_tensor().dtype)
            nll = -model.log_prob(xt.reshape(n, *model.spec.event_shape)).double().sum().item()
    dims = n * D
    return {"method": method_for(model), "bytes": len(data), "bits_per_dim": 8 * len(data) / dims,
            "payload_bits_per_dim": info["payload_bits"] / dims, "ideal_bits_per_dim": info["ideal_bits"] / dims,
            "nll_bits_per_dim": nll / (dims * math.log(2)), "compress_seconds": t1 - t0,
            "decompress_seconds": t2 - t1}
