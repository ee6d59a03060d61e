"""RealNVP's own structure (Dinh et al. 2017): base density plus log-det, the network it picks,
alternating couplings and checkerboards. Its inverse, log-det and normalisation are checked with
every `Bijective` family in test_identities.py."""

import pytest
import torch

from genlab.data.spec import DataSpec
from genlab.models.realnvp import RealNVP, RealNVPConfig


def make_flow(spec: DataSpec, n_layers: int = 4, hidden: int = 32, scale: float = 0.2, **cfg) -> RealNVP:
    """A float64 flow with every parameter perturbed by N(0, scale^2), so no coupling is the identity."""
    torch.manual_seed(0)
    model = RealNVP(spec, RealNVPConfig(n_layers=n_layers, hidden=hidden, **cfg)).double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def test_log_prob_is_base_plus_log_det_and_samples_have_shape():
    spec = DataSpec((1, 4, 4))
    model = make_flow(spec)
    z = torch.randn(5, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    u, log_det = model.forward_and_log_det(z)
    base = torch.distributions.Normal(0.0, 1.0).log_prob(u).flatten(1).sum(1)
    torch.testing.assert_close(model._log_prob(z), base + log_det)
    s1 = model.sample(7, generator=torch.Generator().manual_seed(5))
    s2 = model.sample(7, generator=torch.Generator().manual_seed(5))
    assert s1.shape == (7, 1, 4, 4) and s1.dtype == torch.float64
    torch.testing.assert_close(s1, s2)


def test_auto_network_and_bad_config():
    conv = RealNVP(DataSpec((1, 4, 4)), RealNVPConfig(n_layers=2, net="auto"))
    assert any(isinstance(m, torch.nn.Conv2d) for m in conv.modules())
    for spec in (DataSpec((3,)), DataSpec((1, 4, 4))):  # the default: MLP couplings, images too
        mlp = RealNVP(spec, RealNVPConfig(n_layers=2))
        assert not any(isinstance(m, torch.nn.Conv2d) for m in mlp.modules())
    mlp = RealNVP(DataSpec((3,)), RealNVPConfig(n_layers=2, net="auto"))
    assert not any(isinstance(m, torch.nn.Conv2d) for m in mlp.modules())
    with pytest.raises(ValueError, match="conv"):
        RealNVP(DataSpec((3,)), RealNVPConfig(net="conv"))
    with pytest.raises(ValueError):
        RealNVP(DataSpec((3,)), RealNVPConfig(net="transformer"))


def test_couplings_alternate_and_move_every_entry():
    """Two consecutive couplings keep complementary, non-empty sets of entries unchanged (halves
    for vectors, checkerboards for images); for D = 2 the first keeps coordinate 0."""
    for spec in (DataSpec((2,)), DataSpec((7,)), DataSpec((1, 3, 3))):
        model = make_flow(spec, n_layers=2, hidden=8, net="auto")
        x = torch.randn(4, *spec.event_shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        kept = [(c(x)[0] == x).all(0) for c in model.couplings]
        assert (kept[0] ^ kept[1]).all() and 0 < int(kept[0].sum()) < kept[0].numel()
    model = make_flow(DataSpec((2,)), n_layers=2)
    x = torch.randn(4, 2, dtype=torch.float64)
    assert (model.couplings[0](x)[0][:, 0] == x[:, 0]).all() and (model.couplings[0](x)[0][:, 1] != x[:, 1]).all()


def test_mlp_couplings_on_images_split_a_checkerboard():
    """With MLP couplings on an image, the first coupling moves one colour of the checkerboard
    given the other: its Jacobian (in pixel layout) is the identity on the kept colour and has
    no entry between two moved pixels."""
    model = make_flow(DataSpec((1, 4, 4)), n_layers=1, hidden=8, net="mlp")
    black = ((torch.arange(4)[:, None] + torch.arange(4)[None]) % 2 == 0).flatten()
    z = torch.randn(16, dtype=torch.float64, generator=torch.Generator().manual_seed(4))

    def coupling_only(v):  # the permutation, coupling 0, and the permutation undone
        x, _ = model.entry(v[None])
        return model.entry.inverse(model.couplings[0](x)[0])[0]
    jac = torch.autograd.functional.jacobian(coupling_only, z)
    torch.testing.assert_close(jac[black][:, black], torch.eye(8, dtype=torch.float64))
    assert (jac[black][:, ~black] == 0).all() and (jac[~black][:, black] != 0).any()
    moved = jac[~black][:, ~black]
    torch.testing.assert_close(moved, torch.diag(torch.diagonal(moved)))  # elementwise in the moved colour


def test_encode_decode_round_trip_in_data_space():
    spec = DataSpec((3,))
    model = make_flow(spec)
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6)) * 2 + 1
    model.setup(x)
    codes = model.encode(x)
    assert codes.shape == (6, 3) and model.latent_dim == 3
    torch.testing.assert_close(model.decode(codes), x, atol=1e-10, rtol=0)
