"""The container of `genlab compress`: what a compressed file holds and how it is checked.

Layout (all integers little-endian)::

    b"GLZC"                magic
    u8                     format version (1)
    u32                    length H of the header
    H bytes                header: UTF-8 JSON (family, model fingerprint, data shape, method, ...)
    16 bytes               (version 2) the first 128 bits of the header's SHA-256
    4 * W bytes            the entropy coder's W uint32 words

Version 1 files (no header digest) are still read; their header fields are checked one by one.

The header carries SHA-256 digests, cut to their first 128 bits (32 hex digits: ample against
accidents, and the header stays small), of the words (corruption and truncation), of the model's
weights (decoding with another model) and of the original symbols (a final end-to-end check). Nothing
is pickled: JSON and raw integers only.
"""
from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import torch

MAGIC = b"GLZC"
VERSION = 2
_READS = (1, 2)
_PREFIX = struct.Struct("<4sBI")
DIGITS = 32  # hex digits kept of each SHA-256


def fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the model's state (every parameter and buffer: name, dtype, shape, raw bytes),
    in sorted name order; the same weights give the same hex digest on any machine."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:DIGITS]


def data_digest(symbols: np.ndarray) -> str:
    """SHA-256 of the data as int32 little-endian symbols: (n, D)."""
    return hashlib.sha256(np.ascontiguousarray(symbols, dtype="<i4").tobytes()).hexdigest()[:DIGITS]


def pack(header: dict, words: np.ndarray) -> bytes:
    """The file's bytes: prefix, JSON header (with the words' length and SHA-256), words."""
    payload = np.ascontiguousarray(words, dtype="<u4").tobytes()
    header = {**header, "words": len(payload) // 4, "payload_sha256": hashlib.sha256(payload).hexdigest()[:DIGITS]}
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return _PREFIX.pack(MAGIC, VERSION, len(head)) + head + hashlib.sha256(head).digest()[:16] + payload


def unpack(data: bytes) -> tuple[dict, np.ndarray]:
    """(header, uint32 words) of a file, or ValueError naming what is wrong with it."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decompress expects the bytes that compress returned, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _PREFIX.size or data[:4] != MAGIC:
        raise ValueError("not a genlab compressed file (the magic bytes 'GLZC' are missing); pass a file "
                         "written by `genlab compress` / genlab.tasks.compress.compress")
    _, version, n = _PREFIX.unpack_from(data)
    if version not in _READS:
        raise ValueError(f"compressed file has format version {version}; this genlab reads versions "
                         f"{', '.join(map(str, _READS))}: the file is damaged, or decompress it with the "
                         "genlab version that wrote it")
    end = _PREFIX.size + n + (16 if version >= 2 else 0)
    if len(data) < end:
        raise ValueError("compressed file is truncated inside its header; the file is incomplete, copy it again")
    head = data[_PREFIX.size:_PREFIX.size + n]
    if version >= 2 and hashlib.sha256(head).digest()[:16] != data[end - 16:end]:
        raise ValueError("compressed file has a damaged header (its SHA-256 does not match); the file was "
                         "changed after compression, copy it again")
    try:
        header = json.loads(head.decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"compressed file has a corrupted header ({e}); the file is damaged, copy it again") from None
    payload = data[end:]
    types = {"family": str, "model_sha256": str, "method": str, "n": int, "event_shape": list,
             "data_sha256": str, "words": int, "payload_sha256": str}
    bad = [k for k, t in types.items() if not isinstance(header, dict) or not isinstance(header.get(k), t)
           or isinstance(header.get(k), bool)]
    if not bad:
        bad = [k for k in ("n", "words") if header[k] < 0] + (
            [] if all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in header["event_shape"])
            else ["event_shape"])
    if bad:
        raise ValueError(f"compressed file has a corrupted header (missing or wrong {', '.join(bad)}); "
                         "the file is damaged, copy it again")
    expect = header["words"]
    if len(payload) != 4 * expect:
        raise ValueError(f"compressed file is truncated or padded: {len(payload)} payload bytes, the header "
                         f"records {4 * expect}; the file is incomplete or damaged, copy it again")
    if hashlib.sha256(payload).hexdigest()[:DIGITS] != header.get("payload_sha256"):
        raise ValueError("compressed data are corrupted (their SHA-256 does not match the header's); "
                         "the file was changed after compression, copy it again")
    return header, np.frombuffer(payload, dtype="<u4").astype(np.uint32)


def check_model(header: dict, family: str, digest: str) -> None:
    """Refuse a model other than the one the file was compressed with."""
    if header.get("family") != family or header.get("model_sha256") != digest:
        raise ValueError(f"this file was compressed with a {header.get('family')!r} model whose weights have "
                         f"SHA-256 {str(header.get('model_sha256'))[:12]}..., but the model given is a {family!r} "
                         f"model with weights {digest[:12]}...; decompress with the run that compressed it")
