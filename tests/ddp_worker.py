"""Run by tests/test_torchrun.py under `torchrun --nproc_per_node 2` with gloo on CPU.

argv: OUT JOBS_JSON. Each job is {"family", "settings", "n", "epochs", "batch_size", "every"?}; for
each, the model is built with a different seed on each rank (the trainer must make them equal),
trained on moons with the Trainer, and rank 0 writes OUT/<family>.json (whether the ranks agree,
whether they saw different data, the first and last losses) and OUT/<family>.safetensors (the
final state) for the test to compare with a one-process run.
"""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

import genlab.models.gmm  # noqa: F401  (its row split is watched below)
from genlab import make
from genlab.data import load_dataset
from genlab.train import TrainConfig, Trainer
from genlab.train.distributed import shutdown, world

torch.set_num_threads(1)
rank, size = world()
out = Path(sys.argv[1])
jobs = json.loads(sys.argv[2])


def flat_state(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([v.detach().double().flatten() for v in model.state_dict().values()])


def gather(t: torch.Tensor) -> list[torch.Tensor]:
    parts = [torch.zeros_like(t) for _ in range(size)]
    dist.all_gather(parts, t)
    return parts


for job in jobs:
    fam = job["family"]
    ds = load_dataset("moons", n=job["n"], seed=0)
    model = make(fam, ds.spec, seed=rank, **job["settings"])  # a different initialisation per rank
    before = gather(flat_state(model))
    seen, losses = [], []
    trainer = Trainer(model, TrainConfig(epochs=job["epochs"], batch_size=job["batch_size"], lr=1e-2, progress=False,
                                         device="cpu", patience=None, seed=0),
                      callbacks=[lambda tr, rec: losses.append({k: v for k, v in rec.items() if k.startswith("loss/")})])
    step = trainer._step

    def spy(batch, _step=step, **kw):
        seen.append(float(batch.x.sum()))
        return _step(batch, **kw)

    trainer._step = spy
    rows = []  # EM: the rows this rank's E step took (its share, not all of them)
    gmm_module = sys.modules["genlab.models.gmm"]
    share = gmm_module.my_rows
    gmm_module.my_rows = lambda t, _share=share: rows.append(len(_share(t))) or _share(t)
    trainer.fit(ds.x[job["n_val"]:], None, ds.x[:job["n_val"]])
    gmm_module.my_rows = share
    after = gather(flat_state(model))
    firsts = gather(torch.tensor([seen[0]], dtype=torch.float64))
    if rank == 0:
        (out / f"{fam}.json").write_text(json.dumps({
            "world": size,
            "max_param_diff": max(float((a - after[0]).abs().max()) for a in after),
            "initial_diff": max(float((b - before[0]).abs().max()) for b in before),
            "ranks_saw_different_data": float(firsts[0]) != float(firsts[1]),
            "steps": trainer.step, "first_losses": losses[0], "last_losses": losses[-1], "em_rows": rows[:1],
        }))
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out / f"{fam}.safetensors"))
# the last trainer's DDP wrappers must go before the process group does (genlab.train.distributed.shutdown)
del trainer, step, spy
shutdown()
