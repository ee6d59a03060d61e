"""The peer libraries' versions of genlab's models, built to the same architecture (bench/speed/peers.py).

Each builder returns ``(module, log_prob(x) -> (n,), sample(n) -> (n, D))``. Every coupling /
autoregressive network is the same ``D_in -> hidden x depth -> D_out`` SiLU MLP with a zero last
layer that genlab's `MLP` builds, so the libraries differ only in their flow machinery.
"""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import Tensor, nn

Built = tuple[nn.Module, Callable[[Tensor], Tensor], Callable[[int], Tensor]]


def mlp(d_in: int, d_out: int, hidden: int = 128, depth: int = 2) -> nn.Sequential:
    """The coupling network of genlab's realnvp: SiLU MLP, last layer zero (identity start)."""
    widths = [d_in] + [hidden] * depth
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.SiLU()]
    last = nn.Linear(widths[-1], d_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class _IgnoreContext(nn.Module):
    """nflows calls its coupling networks as ``net(x, context)``; unconditional here."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.net(x)


def realnvp_normflows(dim: int, n_layers: int, hidden: int, depth: int) -> Built:
    """normflows: AffineCouplingBlock (half/half split) + swap permutation, per its RealNVP example."""
    import normflows as nf
    flows = []
    for _ in range(n_layers):
        flows += [nf.flows.AffineCouplingBlock(mlp(dim // 2, 2 * (dim - dim // 2), hidden, depth)),
                  nf.flows.Permute(dim, mode="swap")]
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(dim, trainable=False), flows)
    return model, model.log_prob, lambda n: model.sample(n)[0]


def realnvp_zuko(dim: int, n_layers: int, hidden: int, depth: int) -> Built:
    """zuko.flows.RealNVP: alternating half masks, bounded monotonic affine transforms."""
    import zuko
    flow = zuko.flows.RealNVP(dim, transforms=n_layers, hidden_features=(hidden,) * depth, activation=nn.SiLU)
    return flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,))


def realnvp_nflows(dim: int, n_layers: int, hidden: int, depth: int) -> Built:
    """nflows: AffineCouplingTransform with alternating masks over a standard normal."""
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import AffineCouplingTransform, CompositeTransform
    mask = (torch.arange(dim) < dim // 2).int()
    ts = [AffineCouplingTransform(mask if k % 2 == 0 else 1 - mask,
                                  lambda i, o: _IgnoreContext(mlp(i, o, hidden, depth))) for k in range(n_layers)]
    flow = Flow(CompositeTransform(ts), StandardNormal([dim]))
    return flow, flow.log_prob, flow.sample


def maf_zuko(dim: int, n_layers: int, hidden: int, depth: int) -> Built:
    """zuko.flows.MAF: MADE affine layers, orders reversed between layers."""
    import zuko
    flow = zuko.flows.MAF(dim, transforms=n_layers, hidden_features=(hidden,) * depth, activation=nn.SiLU)
    return flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,))


def maf_nflows(dim: int, n_layers: int, hidden: int, depth: int) -> Built:
    """nflows: MaskedAffineAutoregressiveTransform (plain MADE, no residual blocks) + reversals."""
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import CompositeTransform, MaskedAffineAutoregressiveTransform, ReversePermutation
    ts: list[nn.Module] = []
    for _ in range(n_layers):
        ts += [MaskedAffineAutoregressiveTransform(dim, hidden, num_blocks=depth - 1, use_residual_blocks=False,
                                                   activation=nn.functional.silu), ReversePermutation(dim)]
    flow = Flow(CompositeTransform(ts), StandardNormal([dim]))
    return flow, flow.log_prob, flow.sample


def nsf_normflows(dim: int, n_layers: int, hidden: int, depth: int, bins: int = 8, bound: float = 3.0) -> Built:
    """normflows: ActNorm + LULinearPermute + CoupledRationalQuadraticSpline (linear tails). Its
    conditioner is a ResidualNet (in -> hidden, ``depth - 1`` residual blocks of two hidden x hidden
    layers, -> out), one hidden layer more than genlab's MLP per block; SiLU as on the other sides."""
    import normflows as nf
    flows = []
    for k in range(n_layers):
        flows += [nf.flows.ActNorm((dim,)), nf.flows.LULinearPermute(dim),
                  nf.flows.CoupledRationalQuadraticSpline(dim, max(depth - 1, 1), hidden, num_bins=bins, tail_bound=bound,
                                                          activation=nn.SiLU, reverse_mask=k % 2 == 1)]
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(dim, trainable=False), flows)
    return model, model.log_prob, lambda n: model.sample(n)[0]


def nsf_zuko(dim: int, n_layers: int, hidden: int, depth: int, bins: int = 8, bound: float = 3.0) -> Built:
    """zuko.flows.NSF with ``passes=2`` (coupling, not autoregressive); zuko's splines act on
    [-5, 5] (its fixed bound) with identity outside, no ActNorm / LU layers."""
    import zuko
    flow = zuko.flows.NSF(dim, transforms=n_layers, bins=bins, passes=2, hidden_features=(hidden,) * depth,
                          activation=nn.SiLU)
    return flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,))


def nsf_nflows(dim: int, n_layers: int, hidden: int, depth: int, bins: int = 8, bound: float = 3.0) -> Built:
    """nflows: ActNorm + RandomPermutation + LULinear (identity start) +
    PiecewiseRationalQuadraticCouplingTransform (linear tails): genlab's nsf layer for layer
    (its LU layer starts as a random permutation)."""
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import (ActNorm, CompositeTransform, LULinear,
                                   PiecewiseRationalQuadraticCouplingTransform, RandomPermutation)
    mask = (torch.arange(dim) >= dim // 2).int()  # nflows: 1 = transformed (genlab: the second half)
    ts: list[nn.Module] = []
    for _ in range(n_layers):
        ts += [ActNorm(dim), RandomPermutation(dim), LULinear(dim, identity_init=True),
               PiecewiseRationalQuadraticCouplingTransform(
                   mask, lambda i, o: _IgnoreContext(mlp(i, o, hidden, depth)), num_bins=bins, tails="linear",
                   tail_bound=bound)]
    flow = Flow(CompositeTransform(ts), StandardNormal([dim]))
    return flow, flow.log_prob, flow.sample


PEERS = {
    "realnvp": {"normflows": realnvp_normflows, "zuko": realnvp_zuko, "nflows": realnvp_nflows},
    "maf": {"zuko": maf_zuko, "nflows": maf_nflows},
    "nsf": {"normflows": nsf_normflows, "zuko": nsf_zuko, "nflows": nsf_nflows},
}


def adam_loop(params, batch_loss: Callable[[Tensor], Tensor], x: Tensor, batch: int, epochs: int,
              generator: torch.Generator, lr: float = 1e-3) -> tuple[int, float]:
    """A peer's idiomatic training loop: ``epochs`` shuffled passes over whole batches of ``x``
    (tensor slices, no DataLoader), Adam at ``lr``. Returns (steps, seconds); the optimizer is
    built before the clock starts, as genlab's Trainer is."""
    opt = torch.optim.Adam(params, lr=lr)
    per_epoch = len(x) // batch
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for b in range(per_epoch):
            loss = batch_loss(x[order[b * batch:(b + 1) * batch]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return epochs * per_epoch, time.perf_counter() - t0
