"""Run by test_trainer.py under `torchrun --nproc_per_node 2` with gloo on CPU."""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from genlab.data import load_dataset
from genlab import make
from genlab.train import TrainConfig, Trainer
from genlab.train.distributed import world

rank, size = world()
out = Path(sys.argv[1])
ds = load_dataset("moons", n=1024, seed=0)
# a different initialisation per rank: the trainer must broadcast rank 0's weights
model = make("realnvp", ds.spec, seed=rank, n_layers=2, hidden=16)
flat0 = torch.cat([p.detach().flatten() for p in model.parameters()])
gathered0 = [torch.zeros_like(flat0) for _ in range(size)]
dist.all_gather(gathered0, flat0)
seen, losses = [], []


def record(trainer, rec):
    losses.append(rec["loss/nll"])


orig_step = Trainer._step


def spy(self, batch, **kw):
    seen.append(float(batch.x.sum()))
    return orig_step(self, batch, **kw)


Trainer._step = spy
tr = Trainer(model, TrainConfig(epochs=4, batch_size=64, lr=1e-2, progress=False, device="cpu"), out=out / "run",
             callbacks=[record])
tr.fit(ds.x[100:], None, ds.x[:100])
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(size)]
dist.all_gather(gathered, flat)
first = torch.tensor([seen[0]])
firsts = [torch.zeros(1) for _ in range(size)]
dist.all_gather(firsts, first)
if rank == 0:
    (out / "ddp.json").write_text(json.dumps({
        "world": size,
        "max_param_diff": max(float((g - gathered[0]).abs().max()) for g in gathered),
        "initial_diff": max(float((g - gathered0[0]).abs().max()) for g in gathered0),
        "ranks_saw_different_data": float(firsts[0]) != float(firsts[1]),
        "first_nll": sum(losses[:3]) / 3, "final_nll": sum(losses[-3:]) / 3,
    }))
dist.destroy_process_group()
