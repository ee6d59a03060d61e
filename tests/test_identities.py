"""Mathematical identities checked over every family that declares the capability, in float64.

- `Bijective`: ``inverse(forward(z)) == z`` and the returned ``log|det du/dz|`` equals the one of
  torch.autograd's Jacobian, on vectors, a small image and (for conditional families) with labels.
- an EXACT density on 2-D continuous data: ``exp(log_prob)`` integrates to 1 over a grid.

Families come from the registry and their capabilities, never from a hand-written list: a new
family that declares `Bijective` or an EXACT density is checked by these tests with no change here.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

import genlab
from genlab import Conditional, Density
from genlab.data import DataSpec, Kind
from genlab.protocol import Batch, Bijective
from genlab.registry import get_family

from conftest import tiny_model

F64 = torch.float64
BIJECTIVE = [f for f in genlab.families() if issubclass(get_family(f), Bijective)]
EXACT = [f for f in genlab.families() if get_family(f).density is Density.EXACT]
SPECS = {
    "vector-2": DataSpec((2,)),
    "vector-3": DataSpec((3,)),  # odd: coupling halves of unequal size
    "image-1x4x4": DataSpec((1, 4, 4), Kind.DISCRETE, levels=17),  # squeezes, checkerboards, scales
    "image-2x3x5": DataSpec((2, 3, 5)),  # odd sides
    "labelled-vector-3": DataSpec((3,), num_classes=3),
}
# settings a family offers to trade precision for speed, asked for float64 precision here: an
# inverse by fixed-point iteration to a tolerance, a log-det by a stochastic series
PRECISE = {"inverse_tol": 1e-12, "logdet": "exact"}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _data(spec: DataSpec, n: int = 256, seed: int = 0) -> torch.Tensor:
    """Data of ``spec``: two shifted Gaussian blobs (scale ~1), or integer levels for discrete data."""
    g = _gen(seed)
    if spec.is_discrete:
        return torch.randint(0, spec.levels, (n, *spec.event_shape), generator=g).to(F64)
    shift = torch.where(torch.rand(n, 1, generator=g) < 0.5, -1.0, 1.0).to(F64)
    x = 0.7 * torch.randn(n, spec.dim, generator=g, dtype=F64) + shift * torch.linspace(1, 0.3, spec.dim, dtype=F64)
    return x.reshape(n, *spec.event_shape)


def _trained(family: str, spec: DataSpec, labels: torch.Tensor | None = None, steps: int = 15):
    """The family's tiny float64 model after setup on ``_data(spec)`` and a few optimizer steps on
    each objective with parameters (so no layer sits at an identity initialisation); closed-form
    and EM objectives run until they report done. The `PRECISE` settings the family has are set."""
    fields = {f.name for f in dataclasses.fields(get_family(family).Config)}
    model = tiny_model(family, spec, **{k: v for k, v in PRECISE.items() if k in fields}).double()
    x = _data(spec)
    model.setup(x, labels, _data(spec, 64, seed=1))  # held-out: a KDE picks its bandwidth on it
    for obj in model.objectives():
        if not obj.parameters:
            for _ in range(300):
                if obj.loss(Batch(x, labels, _gen(1))).done:
                    break
            else:
                raise AssertionError(f"{family}: {obj.name} did not finish in 300 steps")
            continue
        opt = torch.optim.Adam(obj.parameters, lr=1e-2)
        for i in range(steps):
            opt.zero_grad()
            obj.loss(Batch(x, labels, _gen(10 + i))).value.backward()
            opt.step()
    return model.eval()


# ----------------------------------------------------------------------------- Bijective
def test_the_flow_families_declare_bijective():
    """Guards the parametrization below against an empty list (the test would then check nothing)."""
    assert len(BIJECTIVE) >= 5, BIJECTIVE


@pytest.mark.parametrize("spec_name", SPECS)
@pytest.mark.parametrize("family", BIJECTIVE)
def test_bijection_inverts_and_its_log_det_is_autograds(family, spec_name):
    spec = SPECS[spec_name]
    labelled = spec.num_classes is not None
    if labelled and not issubclass(get_family(family), Conditional):
        pytest.skip(f"{family} is not conditional")
    labels = torch.arange(256) % 3 if labelled else None
    model = _trained(family, spec, labels)
    n = 3
    z = torch.randn(n, *spec.event_shape, generator=_gen(2), dtype=F64)
    cond = torch.tensor([0, 2, 3]) if labelled else None  # 3 = the "no label" row
    with torch.no_grad():
        u, log_det = model.forward_and_log_det(z, condition=cond)
        back = model.inverse(u, condition=cond)
    assert u.numel() == z.numel() and log_det.shape == (n,)
    assert not torch.allclose(u.reshape(z.shape), z, atol=1e-3), "the trained flow is still the identity"
    torch.testing.assert_close(back.reshape(z.shape), z, atol=1e-8, rtol=0)
    for i in range(n):
        rows = None if cond is None else cond[i:i + 1]

        def f(v):
            return model.forward_and_log_det(v.reshape(1, *spec.event_shape), condition=rows)[0].flatten()
        jac = torch.autograd.functional.jacobian(f, z[i].flatten())
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign != 0
        torch.testing.assert_close(log_det[i], logabs, atol=1e-8, rtol=0)
    if labelled:  # the label moves the map: it is not ignored
        with torch.no_grad():
            other = model.forward_and_log_det(z, condition=torch.tensor([1, 1, 1]))[0]
        assert not torch.allclose(other, u)


# ----------------------------------------------------------------------------- normalization
@pytest.mark.parametrize("family", EXACT)
def test_exact_density_integrates_to_one_on_a_grid(family):
    """Simpson's rule for exp(log_prob) over [-8, 8]^2 (401 x 401 points), in data space: the
    preprocessing's change of variables is part of what is checked."""
    model = _trained(family, DataSpec((2,)))
    axis = torch.linspace(-8, 8, 401, dtype=F64)
    weights = torch.ones(401, dtype=F64)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    weights *= float(axis[1] - axis[0]) / 3
    with torch.no_grad():
        p = torch.cat([model.log_prob(chunk).exp() for chunk in torch.cartesian_prod(axis, axis).split(40_000)])
    assert torch.isfinite(p).all()
    p = p.reshape(401, 401)
    mass = float(weights @ p @ weights)
    assert mass == pytest.approx(1.0, abs=1e-4), mass
    edge = torch.cat([p[[0, -1]].flatten(), p[:, [0, -1]].flatten()])
    assert float(edge.max()) < 1e-5, "mass reaches the grid's edge: widen the grid"
