"""What each trainer speed setting buys, step for step in one process.

    python -m bench.speed.train_options [--cases realnvp:moons,maf:digits,nsf:digits,vae,ddpm] [--rounds 15]

For each case, trainers of the same model (same seed) differ in one `TrainConfig` setting from
genlab's defaults: ``grad_clip=None`` (no clipping; nsf already has none), ``amp="bf16"``
(bf16 autocast; CPUs with native bf16 matmuls only). (A ``flush_denormal`` setting, subnormal
floats flushed to zero inside each step, was measured here at 0.95-1.02x and removed.) Their ``train_step`` calls are interleaved on the same batches
(`bench.speed.timing.interleaved_steps`); the table gives each variant's median step time and its
speed relative to the defaults (> 1: faster than the defaults). One torch thread. Flows use
bench/speed/peers.py's configurations (unconditional), vae and ddpm bench/speed/peers_deep.py's.
``torch.compile`` is measured by bench/speed/peers_compile.py (its warm-up needs its own timing).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

from genlab.data import DataSpec, Kind
from genlab.registry import get_family
from genlab import make
from genlab.train import TrainConfig, Trainer
from genlab.train.trainer import cpu_has_bf16

from ..common import data_splits, print_table, write_results
from .timing import interleaved_steps
from .peers import FLOW_DATA, build_genlab
from .peers_deep import DDPM, VAE, _splits

VARIANTS = {"defaults": {}, "grad_clip=None": {"grad_clip": None}, "amp=bf16": {"amp": "bf16"}}


def _case(case: str) -> tuple[str, torch.Tensor, int, object]:
    """(family, training data, batch size, model factory) of ``family:data`` or ``vae`` / ``ddpm``."""
    family, _, data = case.partition(":")
    if family in ("vae", "ddpm"):
        s, batch = _splits(family)
        x = s.train.x
        spec = DataSpec(x.shape[1:], Kind.BINARY if family == "vae" else Kind.DISCRETE, 2 if family == "vae" else 17)
        return family, x, batch, lambda: make(family, spec, seed=0, **VAE if family == "vae" else DDPM)
    n, batch, _ = FLOW_DATA[data]
    s = data_splits(data, n=n)
    return family, s.train.x, batch, lambda: build_genlab(family, s.train.spec, 0)


def measure(case: str, rounds: int) -> list[dict]:
    family, x, batch, make = _case(case)
    base = TrainConfig(seed=0, device="cpu", batch_size=batch, lr=1e-3, ema=None,
                        lr_schedule="constant", patience=None, progress=False, epochs=1).for_family(get_family(family))
    fns = {}
    for name, opts in VARIANTS.items():
        tc = dataclasses.replace(base, **opts)
        if name != "defaults" and tc == base or (tc.amp == "bf16" and not cpu_has_bf16()):
            continue  # the same as the defaults for this family (nsf does not clip), or no native bf16
        tr = Trainer(make(), tc)
        tr.prepare(x)
        fns[name] = tr.train_step
    g = torch.Generator().manual_seed(1)
    batches = [x[torch.randint(len(x), (batch,), generator=g)] for _ in range(3)]
    wall, cpu = interleaved_steps(fns, batches, rounds)
    return [{"case": case, "variant": k, "batch": batch, "step_ms": 1e3 * t, "cpu_step_ms": 1e3 * cpu[k],
             "speed_vs_defaults": wall["defaults"] / t, "cpu_speed_vs_defaults": cpu["defaults"] / cpu[k],
             "rounds": rounds} for k, t in wall.items()]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="realnvp:moons,maf:digits,nsf:digits,vae,ddpm")
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for case in args.cases.split(","):
        new = measure(case, args.rounds)
        rows += new
        for r in new:
            print(f"{r['case']} {r['variant']}: {r['step_ms']:.2f} ms", flush=True)
    print_table(rows, ["case", "variant", "batch", "step_ms", "cpu_step_ms", "speed_vs_defaults",
                       "cpu_speed_vs_defaults"])
    write_results("train_options", rows, "python -m bench.speed.train_options " + " ".join(
        argv if argv is not None else sys.argv[1:]), key=("case", "variant"))


if __name__ == "__main__":
    main()
