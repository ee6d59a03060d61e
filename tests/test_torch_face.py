"""The torch face of a model: Distribution-like properties, rsample where honest, torch.compile."""
from __future__ import annotations

import importlib

import pytest
import torch

import genlab
from genlab.data import DataSpec
from genlab.nn.distribution import DistributionFace

torch.set_num_threads(1)


def _flow(kind: str = "continuous", levels=None):
    return genlab.make("realnvp", DataSpec((2,), kind, levels), seed=0, n_layers=2, hidden=8)


def test_distribution_shapes_and_log_prob_of_samples():
    model = _flow()
    assert isinstance(model, DistributionFace) and isinstance(model, genlab.GenerativeModel)
    assert model.event_shape == torch.Size([2]) and model.batch_shape == torch.Size([])
    x = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, *model.event_shape) and model.log_prob(x).shape == (5,)


def test_rsample_is_differentiable_only_where_honest():
    model = _flow()
    model.pre.fit(torch.randn(64, 2))
    assert model.has_rsample
    x = model.rsample(8, generator=torch.Generator().manual_seed(0))
    x.pow(2).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    # same draws as sample() from the same seed, only with a graph
    torch.testing.assert_close(x.detach(), model.sample(8, generator=torch.Generator().manual_seed(0)))
    gmm = genlab.make("gmm", DataSpec((2,)), seed=0)
    discrete = _flow("discrete", 5)
    assert not gmm.has_rsample and not discrete.has_rsample
    with pytest.raises(NotImplementedError, match="has_rsample is False"):
        discrete.rsample(2)


@pytest.mark.slow  # the first compilation takes 10-60 s on a CPU
def test_torch_compile_of_log_prob_matches_eager():
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile is not available in this torch build")
    try:
        importlib.import_module("torch._dynamo")
    except Exception as e:  # pragma: no cover - platform dependent
        pytest.skip(f"torch.compile is unavailable here: {e}")
    model = _flow()
    model.pre.fit(torch.randn(64, 2))
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    compiled = torch.compile(model.log_prob)
    torch.testing.assert_close(compiled(x), model.log_prob(x), rtol=1e-4, atol=1e-4)
