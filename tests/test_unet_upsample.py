"""`upsample_conv` (nearest 2x upsampling + 3x3 conv as one transposed convolution) and the U-Net
that uses it: the same function and gradients as the plain resize-convolution, in float64."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn import unet as unet_mod
from genlab.nn.unet import UNet, upsample_conv


def _reference(h: torch.Tensor, conv: nn.Conv2d, size) -> torch.Tensor:
    return conv(F.interpolate(h, size=tuple(size), mode="nearest"))


@pytest.mark.parametrize("shape,cout", [((3, 4, 4, 4), 4), ((2, 5, 3, 7), 2), ((1, 1, 1, 1), 3)])
def test_transposed_convolution_equals_upsample_then_conv_with_gradients(shape, cout):
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(shape[1], cout, 3, padding=1).double()
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    h = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    size = (2 * shape[2], 2 * shape[3])
    w_out = torch.randn(shape[0], cout, *size, generator=g, dtype=torch.float64)  # a random linear loss
    grads = []
    for f in (upsample_conv, _reference):
        y = f(h, conv, size)
        assert y.shape == (shape[0], cout, *size)
        grads.append((y.detach(), *torch.autograd.grad((y * w_out).sum(), (h, conv.weight, conv.bias))))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_sizes_that_are_not_a_doubling_and_other_convolutions_take_the_plain_path():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    conv = nn.Conv2d(3, 2, 3, padding=1).double()
    assert torch.equal(upsample_conv(h, conv, (7, 7)), _reference(h, conv, (7, 7)))  # 4 -> 7, not 2x
    conv5 = nn.Conv2d(3, 2, 5, padding=2).double()  # not 3x3: no transposed form is used
    assert torch.equal(upsample_conv(h, conv5, (8, 8)), _reference(h, conv5, (8, 8)))


@pytest.mark.parametrize("size", [(8, 8), (28, 28), (12, 8)])
def test_unet_matches_its_definition_and_keeps_its_parameter_names(size, monkeypatch):
    """The U-Net equals itself with explicit nearest upsampling in place of `upsample_conv`."""
    torch.manual_seed(0)
    net = UNet(2, size, channels=8).double()
    with torch.no_grad():
        for p in net.parameters():  # the output layer starts at zero: give every weight a value
            p.normal_(0, 0.2)
    x = torch.randn(3, 2, *size, dtype=torch.float64)
    t = torch.rand(3, dtype=torch.float64) * 1000
    fast = net(x, t)
    monkeypatch.setattr(unet_mod, "upsample_conv", _reference)
    slow = net(x, t)
    assert not torch.equal(fast, slow)  # the two paths really differ (taps summed first: rounding)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)
    assert {f"upconv.{i}.weight" for i in range(net.levels)} <= set(net.state_dict())
