"""What the machine offers the trainer: native bf16 on this CPU, and torch's thread count held
for the length of a fit."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


def cpu_has_bf16() -> bool:
    """Native bf16 matrix multiplies on this CPU (AVX512-BF16 or AMX; otherwise they are emulated)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@contextlib.contextmanager
def threads_held(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` inside the block (None: unchanged), then restored."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
