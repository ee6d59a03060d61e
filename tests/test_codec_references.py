"""The codec references of `genlab compare`: lossless, and never below the entropy of the data."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from genlab.metrics.codecs import _mosaic, codec_bits_per_dim


def test_the_mosaic_holds_every_image_and_png_webp_decode_it_exactly():
    from PIL import Image

    x = torch.randint(0, 17, (10, 1, 8, 8), generator=torch.Generator().manual_seed(0)).numpy().astype(np.uint8)
    m = _mosaic(x)
    assert m.shape == (24, 32)  # 3 rows of 4 cells of 8 x 8, the last 2 empty
    assert not m[16:, 16:].any()
    assert np.array_equal(m[8:16, 16:24], x[6, 0])  # row 1, column 2
    for fmt, kw in (("PNG", {}), ("WEBP", {"lossless": True, "quality": 100})):
        buf = io.BytesIO()
        Image.fromarray(m).save(buf, format=fmt, **kw)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L")), m), fmt


def test_no_codec_beats_the_entropy_of_uniform_levels_and_constant_data_costs_almost_nothing():
    g = torch.Generator().manual_seed(1)
    uniform = torch.randint(0, 16, (400, 1, 8, 8), generator=g)  # 4 bits per value exactly
    bits = codec_bits_per_dim(uniform, 16)
    assert set(bits) == {"png", "webp", "lzma"}
    assert all(b >= 3.95 for b in bits.values()), bits
    flat = codec_bits_per_dim(torch.zeros(400, 1, 8, 8), 16)
    assert all(b < 0.1 for b in flat.values()), flat
    assert set(codec_bits_per_dim(torch.zeros(50, 3), 4)) == {"lzma"}  # not images
    with pytest.raises(ValueError, match="integers in 0 .. 3"):
        codec_bits_per_dim(torch.full((5, 3), 4.0), 4)
