"""Float64 identities of the flow layers (inverse round trips, log|det J| against torch.autograd's
Jacobian, with and without a context), the autoregressive property by back-propagation, RQ splines
(monotone, identity at init, linear tails), glow's labels and the variational dequantizer's density
(Kingma & Dhariwal 2018; Papamakarios et al. 2017; Durkan et al. 2019; Ho et al. 2019). Whole
flows are checked with every `Bijective` family in test_identities.py."""

import pytest
import torch

from genlab.data.spec import DataSpec, Kind
from genlab.models.glow import Glow, GlowConfig
from genlab.nn.dequant import ConditionalDequantizer
from genlab.nn.flows import (MADE, ActNorm, AffineCoupling, LULinear, MaskedAffineAutoregressive, Permutation,
                             data_dependent_init)
from genlab.nn.splines import SplineAutoregressive, SplineCoupling, rational_quadratic_spline
from genlab.protocol import Density

F64 = torch.float64


def perturb(module, scale=0.2, seed=1):
    """Move every parameter off its (often identity) initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def randn(*shape, seed=2):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def check_bijection(fwd, inv, x, atol=1e-9):
    """``fwd(x, rows) -> (y, log_det)`` for the examples ``rows`` of the batch (their contexts):
    inverse round trip and log_det == log|det dy/dx| from autograd, example by example."""
    everything = slice(None)
    y, log_det = fwd(x, everything)
    assert y.shape == x.shape and log_det.shape == (len(x),)
    assert not torch.allclose(y, x)
    torch.testing.assert_close(inv(y, everything), x, atol=atol, rtol=0)
    for i in range(len(x)):
        rows = slice(i, i + 1)
        jac = torch.autograd.functional.jacobian(lambda v: fwd(v.reshape(1, *x.shape[1:]), rows)[0].flatten(),
                                                 x[i].flatten(), vectorize=True)
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign != 0
        torch.testing.assert_close(log_det[i], logabs, atol=atol, rtol=0)


def _layers():
    torch.manual_seed(0)
    ctx = randn(2, 4, seed=9)
    return {
        "actnorm-vec": (ActNorm(5), (5,), None),
        "actnorm-img": (ActNorm(2), (2, 2, 3), None),
        "lu-vec": (LULinear(5), (5,), None),
        "lu-1x1conv-img": (LULinear(3), (3, 2, 3), None),
        "permutation": (Permutation.random(5), (5,), None),
        "affine-coupling-vec": (AffineCoupling(5, False, 16, 1, ctx_dim=4), (5,), ctx),
        "affine-coupling-img": (AffineCoupling(3, True, 8, 1, ctx_dim=4), (3, 2, 3), ctx),
        "made-affine-2d": (MaskedAffineAutoregressive(2, 16, 2, [0, 1], ctx_dim=4), (2,), ctx),
        "made-affine-5d": (MaskedAffineAutoregressive(5, 16, 1, [3, 0, 4, 1, 2]), (5,), None),
        "spline-coupling-vec": (SplineCoupling(4, False, 16, 1, ctx_dim=4, bins=5, bound=2.0), (4,), ctx),
        "spline-coupling-img": (SplineCoupling(2, True, 8, 1, bins=4, bound=2.0), (2, 2, 3), None),
        "spline-ar-2d": (SplineAutoregressive(2, 16, 1, [1, 0], ctx_dim=4, bins=6, bound=2.0), (2,), ctx),
        "spline-ar-4d": (SplineAutoregressive(4, 16, 2, [2, 0, 3, 1], bins=4, bound=2.0), (4,), None),
    }


LAYERS = _layers()


@pytest.mark.parametrize("name", LAYERS)
def test_layer_inverse_and_log_det(name):
    layer, shape, ctx = LAYERS[name]
    layer = perturb(layer.double(), scale=0.3)
    x = 1.5 * randn(2, *shape)  # some entries fall outside the splines' [-2, 2]: the tails count too
    check_bijection(lambda v, rows: layer(v, None if ctx is None else ctx[rows]),
                    lambda v, rows: layer.inverse(v, None if ctx is None else ctx[rows]), x)


def test_actnorm_data_dependent_init_standardizes_its_first_batch():
    x = 3 + 2 * randn(64, 3, 4, 4)
    norm = ActNorm(3).double()
    with data_dependent_init(norm):
        y, _ = norm(x)
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.zeros(3, dtype=F64), atol=1e-9, rtol=0)
    torch.testing.assert_close(y.std((0, 2, 3), unbiased=False), torch.ones(3, dtype=F64), atol=1e-5, rtol=0)
    y2, _ = norm(x + 1)  # later passes do not re-initialise
    torch.testing.assert_close(y2, y + norm.log_scale.exp()[:, None, None])


def test_lu_weight_is_invertible_and_its_log_det_is_the_matrix_one():
    torch.manual_seed(0)
    lu = perturb(LULinear(4).double())
    _, logabs = torch.linalg.slogdet(lu.weight())
    torch.testing.assert_close(lu(randn(2, 4, 3, 5))[1], (15 * logabs).expand(2))


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4], [3, 0, 4, 1, 2]])
def test_made_outputs_depend_only_on_earlier_inputs(order):
    torch.manual_seed(0)
    made = perturb(MADE(5, 3, 32, 2, order))  # nonzero last layer: every allowed path is live
    rank = torch.empty(5, dtype=torch.long)
    rank[torch.tensor(order)] = torch.arange(5)
    x = randn(4, 5).float().requires_grad_(True)
    out = made(x)
    for i in range(5):
        (grad,) = torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)
        reached = grad.abs().sum(0) > 0
        torch.testing.assert_close(reached, rank < rank[i])  # exactly the earlier inputs


def test_maf_layer_jacobian_is_triangular_in_its_order():
    torch.manual_seed(0)
    layer = perturb(MaskedAffineAutoregressive(4, 16, 2, [2, 0, 3, 1]).double())
    jac = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], randn(4))
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(jac[perm][:, perm], torch.tril(jac[perm][:, perm]))


def test_spline_is_monotone_identity_at_init_and_linear_outside_the_bound():
    x = torch.linspace(-5, 5, 1001, dtype=F64)
    zeros_w, zeros_d = torch.zeros(1001, 6, dtype=F64), torch.zeros(1001, 5, dtype=F64)
    y, ld = rational_quadratic_spline(x, zeros_w, zeros_w, zeros_d, bound=3.0)
    torch.testing.assert_close(y, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(ld, torch.zeros_like(ld), atol=1e-12, rtol=0)
    g = torch.Generator().manual_seed(0)
    w, h, d = (3 * torch.randn(k, generator=g, dtype=F64) for k in (6, 6, 5))
    y, ld = rational_quadratic_spline(x, w.expand(1001, 6), h.expand(1001, 6), d.expand(1001, 5), bound=3.0)
    assert (y.diff() > 0).all()  # strictly increasing
    outside = x.abs() >= 3
    torch.testing.assert_close(y[outside], x[outside])  # identity tails
    assert float((y - x).abs().max()) > 0.1  # not the identity inside
    xr = x.clone().requires_grad_(True)
    yr, _ = rational_quadratic_spline(xr, w.expand(1001, 6), h.expand(1001, 6), d.expand(1001, 5), bound=3.0)
    (dy,) = torch.autograd.grad(yr.sum(), xr)
    torch.testing.assert_close(ld, dy.log(), atol=1e-10, rtol=0)  # log-derivative against autograd
    back, ld_inv = rational_quadratic_spline(y, w.expand(1001, 6), h.expand(1001, 6), d.expand(1001, 5),
                                             inverse=True, bound=3.0)
    torch.testing.assert_close(back, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(ld_inv, -ld, atol=1e-10, rtol=0)


def test_labels_change_the_density_and_none_is_the_unlabelled_row():
    torch.manual_seed(0)
    spec = DataSpec((1, 4, 4), Kind.DISCRETE, levels=5, num_classes=3)
    model = perturb(Glow(spec, GlowConfig(scales=2, steps=2, hidden=16, depth=1, conditional=True)).double(), scale=0.1)
    x = torch.randint(0, 5, (4, 1, 4, 4)).double()
    a = model.log_prob(x, condition=torch.zeros(4, dtype=torch.long))
    b = model.log_prob(x, condition=torch.full((4,), 2))
    assert not torch.allclose(a, b)
    torch.testing.assert_close(model.log_prob(x), model.log_prob(x, condition=None))
    with pytest.raises(ValueError, match="condition labels"):
        model.log_prob(x, condition=torch.tensor([0, 1, 2, 3]))
    codes = model.encode(x, condition=torch.tensor([0, 1, 2, 0]))
    back = model.decode(codes, condition=torch.tensor([0, 1, 2, 0]))
    torch.testing.assert_close(back, x)  # dequantize -> flow -> inverse -> floor


def test_variational_dequantizer_log_q_is_its_change_of_variables():
    spec = DataSpec((2, 2, 2), Kind.DISCRETE, levels=4)
    torch.manual_seed(0)
    q = perturb(ConditionalDequantizer(spec, layers=3, hidden=8).double(), scale=0.05)
    x = torch.randint(0, 4, (2, 2, 2, 2)).double()
    gen = torch.Generator().manual_seed(5)
    u, log_q = q(x, torch.Generator().manual_seed(5))
    eps = torch.randn(x.shape, generator=gen, dtype=F64)
    assert ((u > 0) & (u < 1)).all()
    for i in range(len(x)):
        def g(e, i=i):  # eps -> u for example i, with the same noise path as q
            v = e.reshape(1, *x.shape[1:])
            xs = 2 * x[i:i + 1] / 3 - 1
            for mask, net in zip(q.masks, q.nets):
                raw_s, t = net(torch.cat([v * mask, xs], 1)).chunk(2, 1)
                s = 2.0 * torch.tanh(raw_s / 2.0) * (1 - mask)
                v = v * s.exp() + t * (1 - mask)
            return torch.sigmoid(v).flatten()
        torch.testing.assert_close(g(eps[i].flatten()), u[i].flatten())
        _, logabs = torch.linalg.slogdet(torch.autograd.functional.jacobian(g, eps[i].flatten()))
        log_n = torch.distributions.Normal(0.0, 1.0).log_prob(eps[i]).sum()
        torch.testing.assert_close(log_q[i], log_n - logabs, atol=1e-9, rtol=0)


def test_variational_dequantization_bounds_the_exact_discrete_probability():
    spec = DataSpec((2,), Kind.DISCRETE, levels=3)
    torch.manual_seed(0)
    model = Glow(spec, GlowConfig(steps=2, hidden=8, depth=1, dequantization="variational", dequant_layers=2))
    model = perturb(model.double(), scale=0.3)
    model.setup(torch.tensor([[0, 1], [2, 2], [1, 0], [2, 1]], dtype=F64))
    assert model.pre.lower_bound and model.density is Glow.density is Density.EXACT  # a bound through q(u|x)
    xs = torch.cartesian_prod(torch.arange(3.0), torch.arange(3.0)).double()
    with torch.no_grad():
        bound = model.log_prob(xs.repeat(300, 1), generator=torch.Generator().manual_seed(0)).reshape(300, 9).mean(0)
        # exact P(x) = integral of the continuous model's density over the cube [x, x+1) / L (midpoint rule)
        m = 40
        offsets = torch.cartesian_prod(*(2 * [(torch.arange(m, dtype=F64) + 0.5) / m]))
        y = ((xs[:, None] + offsets[None]) / 3).reshape(-1, 2)
        log_py = model._log_prob((y - model.pre.stats.mean) / model.pre.stats.std) - model.pre.stats.std.log().sum()
        exact = (log_py.reshape(9, m * m).exp().mean(1) / 9).log()
    assert float(exact.exp().sum()) <= 1.0
    assert (bound <= exact + 0.02).all(), (bound, exact)  # Jensen: the bound never exceeds log P(x)
