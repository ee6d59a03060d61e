"""nsf's LU layers start as random permutations: the flow starts as an elementwise map of the
data's own coordinates, which is what lets its splines fit axis-aligned, non-Gaussian marginals
(the reason for the default; bench/speed/peers.py on digits)."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.data.spec import DataSpec
from genlab.models.nsf import NSF, NSFConfig
from genlab.nn.flows import LULinear
from genlab.train import TrainConfig, Trainer


def _lus(model: NSF) -> list[LULinear]:
    return [m for m in model.modules() if isinstance(m, LULinear)]


def test_lu_layers_start_as_permutations_or_rotations():
    torch.manual_seed(0)
    perm = NSF(DataSpec((6,)), NSFConfig(n_layers=3, hidden=8))
    for lu in _lus(perm):
        w = lu.weight().detach()
        assert set(w.unique().tolist()) == {0.0, 1.0}
        assert torch.equal(w.sum(0), torch.ones(6)) and torch.equal(w.sum(1), torch.ones(6))
        assert lu.log_s.abs().max() == 0  # log|det| = 0 at the start
    rot = NSF(DataSpec((6,)), NSFConfig(n_layers=3, hidden=8, lu_init="rotation"))
    for lu in _lus(rot):
        w = lu.weight().detach().double()
        torch.testing.assert_close(w @ w.T, torch.eye(6, dtype=torch.float64), atol=1e-5, rtol=0)
        assert (w.abs() > 1e-3).sum() > 6  # a dense rotation, not a permutation


def test_flow_at_init_permutes_the_coordinates():
    """Zero conditioners make every spline the identity; with permutation LU layers (and
    identity ActNorms before setup) the whole flow is then a permutation: Jacobian 0/1, log|det| 0."""
    torch.manual_seed(1)
    model = NSF(DataSpec((5,)), NSFConfig(n_layers=4, hidden=8)).double()
    z = torch.randn(3, 5, dtype=torch.float64)
    u, log_det = model.forward_and_log_det(z)
    torch.testing.assert_close(log_det, torch.zeros(3, dtype=torch.float64))
    jac = torch.autograd.functional.jacobian(lambda v: model.forward_and_log_det(v[None])[0][0], z[0])
    assert set(jac.unique().tolist()) == {0.0, 1.0} and torch.equal(jac.sum(0), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(u, z @ jac.T)
    torch.testing.assert_close(model.inverse(u), z)


def test_permutation_start_fits_axis_aligned_marginals_better_than_a_rotation():
    """Independent uniform coordinates (NLL 8 log(2 sqrt 3) = 9.94, a Gaussian 11.35): a short
    training run from the permutation start gets much closer than the same run from a rotation,
    which first mixes the 8 uniforms into near-Gaussian sums."""
    def fit(lu_init: str) -> float:
        torch.manual_seed(0)
        x = (torch.rand(4096, 8, generator=torch.Generator().manual_seed(0)) - 0.5) * 2 * math.sqrt(3)
        model = NSF(DataSpec((8,)), NSFConfig(n_layers=2, hidden=32, depth=1, bins=8, lu_init=lu_init))
        cfg = TrainConfig(epochs=5, batch_size=256, lr=3e-3, grad_clip=None, patience=None, progress=False,
                          device="cpu")  # 80 steps
        Trainer(model, cfg).fit(x)
        with torch.no_grad():
            return -model.log_prob(x).mean().item()

    perm, rot = fit("permutation"), fit("rotation")
    assert perm < 10.7 and perm < rot - 0.3, (perm, rot)


def test_bad_lu_init_is_refused():
    with pytest.raises(ValueError, match="lu_init"):
        NSF(DataSpec((4,)), NSFConfig(lu_init="identity"))
