"""Training step time of genlab and the flow peers, interleaved step for step in one process.

    python -m bench.speed.peers_steps [--models realnvp,maf,nsf] [--data moons,digits] [--rounds 15]

bench/speed/peers.py times whole runs in fresh subprocesses; on a machine whose load changes by 4x
from one minute to the next (2 cores shared by several jobs) its medians of 3 runs can mislead.
Here every library's model (bench/speed/peer_models.py, the configurations of bench/speed/peers.py) is
built in one process and rounds of 3 training steps alternate between them (genlab, peer A,
peer B, ..., genlab, ...) on the same batches, so that each moment's load falls on all of them;
the table gives the median step time over ``--rounds`` rounds and the ratio of throughputs.
"dense floor" (realnvp, maf) times only what every implementation of the architecture must do
(the conditioner MLPs' forward and backward, input gradients included, and a fused Adam step);
``ceiling`` = peer / floor is the highest ratio any float32 implementation could reach here.
genlab's step is its trainer's (``Trainer.train_step``: loss, backward, clipping, fused Adam, logging),
the peers' the loop of bench/speed/peers.py (``-log_prob(x).mean()``, backward, Adam). One thread.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

import torch

from genlab.data.preprocess import Preprocess, default_preprocess
from genlab.train import TrainConfig, Trainer

from ..common import data_splits, print_table, write_results
from .timing import interleaved_steps
from .peer_models import PEERS, mlp
from .peers import FLOW_CONFIG, FLOW_DATA, build_genlab


def _genlab(model: str, spec, x: torch.Tensor, batch: int, compile: bool) -> Callable[[torch.Tensor], None]:
    gm = build_genlab(model, spec, seed=0)
    tr = Trainer(gm, TrainConfig(seed=0, device="cpu", batch_size=batch, lr=1e-3, compile=compile,
                                  lr_schedule="constant", patience=None, progress=False, epochs=1))
    tr.prepare(x)
    return tr.train_step


def _floor(model: str, dim: int, n_layers: int, hidden: int, depth: int) -> Callable[[torch.Tensor], None]:
    """The work no implementation of the architecture can skip: every conditioner's forward and
    backward (with the gradient of its input, which earlier layers need) and one fused Adam step
    over the same parameters; no flow algebra, no log-determinants, no clipping, no Python layers."""
    a, b = (dim // 2, 2 * (dim - dim // 2)) if model == "realnvp" else (dim, 2 * dim)  # maf: one MADE
    nets = [mlp(a, b, hidden, depth) for _ in range(n_layers)]
    params = [p for net in nets for p in net.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)

    grads: dict[int, torch.Tensor] = {}

    def step(xb: torch.Tensor) -> None:
        x = xb.flatten(1)[:, :a].detach().requires_grad_(True)
        outs = [net(x) for net in nets]
        g = grads.setdefault(len(x), torch.randn(len(x), b, generator=torch.Generator().manual_seed(0)) / len(x))
        opt.zero_grad(set_to_none=True)
        torch.autograd.backward(outs, [g] * len(outs))  # a dense output gradient, as a flow's loss gives
        opt.step()
    return step


def steppers(model: str, data: str, compile: bool) -> tuple[dict[str, Callable[[torch.Tensor], None]], int]:
    n, batch, _ = FLOW_DATA[data]
    s = data_splits(data, n=n)
    x, cfg = s.train.x, FLOW_CONFIG[model]
    out = {"genlab": _genlab(model, s.train.spec, x, batch, False)}
    if compile:  # compiled in the warm-up steps
        out["genlab+compile"] = _genlab(model, s.train.spec, x, batch, True)
    pre = default_preprocess(s.train.spec) if s.train.spec.is_discrete else Preprocess()
    pre.fit(x)
    g = torch.Generator().manual_seed(0)
    for lib, build in PEERS[model].items():
        torch.manual_seed(0)
        module, log_prob, _ = build(s.train.spec.dim, **cfg)
        opt = torch.optim.Adam(module.parameters(), lr=1e-3)

        def step(xb: torch.Tensor, log_prob=log_prob, opt=opt) -> None:
            z, logdet = pre(xb, g)
            loss = -(log_prob(z.flatten(1)) + logdet).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        out[lib] = step
    if model in ("realnvp", "maf"):
        torch.manual_seed(0)
        out["dense floor"] = _floor(model, s.train.spec.dim, **cfg)
    return out, batch


def measure(model: str, data: str, rounds: int, compile: bool) -> list[dict]:
    fns, batch = steppers(model, data, compile)
    n = FLOW_DATA[data][0]
    x = data_splits(data, n=n).train.x
    g = torch.Generator().manual_seed(1)
    batches = [x[torch.randint(len(x), (batch,), generator=g)] for _ in range(3)]
    med, mcpu = interleaved_steps(fns, batches, rounds)
    return [{"model": model, "data": data, "library": lib, "batch": batch, "step_ms": 1e3 * t,
             "cpu_step_ms": 1e3 * mcpu[lib], **({"cpu_ratio": mcpu[lib] / mcpu["genlab"]} if lib in PEERS[model] else {}),
             "examples_per_s": batch / t, "rounds": rounds,
             # throughput of genlab (eager; compiled) over this library's, for the peers
             **({"train_ratio": t / med["genlab"]} if lib in PEERS[model] else {}),
             # the highest genlab/peer ratio any float32 implementation could reach: peer / floor
             **({"ceiling": t / med["dense floor"]} if lib in PEERS[model] and "dense floor" in med else {}),
             **({"compiled_ratio": t / med["genlab+compile"]} if "genlab+compile" in med and lib in PEERS[model]
                else {}),
             **({"compile_speedup": med["genlab"] / t} if lib == "genlab+compile" else {})} for lib, t in med.items()]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="realnvp,maf,nsf")
    p.add_argument("--data", default="moons,digits")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--compile", default="realnvp,maf", help="models also stepped with TrainConfig(compile=True)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for data in args.data.split(","):
        for model in args.models.split(","):
            new = measure(model, data, args.rounds, model in args.compile.split(","))
            rows += new
            for r in new:
                print(f"{model:8s} {data:7s} {r['library']:10s} {r['step_ms']:8.2f} ms  {r.get('train_ratio', '')}",
                      flush=True)
    print_table(rows, ["model", "data", "library", "batch", "step_ms", "cpu_step_ms", "examples_per_s", "train_ratio",
                       "cpu_ratio", "compiled_ratio", "compile_speedup", "ceiling"])
    write_results("peers_steps", rows, "python -m bench.speed.peers_steps " + " ".join(
        argv if argv is not None else sys.argv[1:]), key=("model", "data", "library"))


if __name__ == "__main__":
    main()
