"""Data parallelism the way users launch it: `torchrun --nproc_per_node 2 -m genlab train ...` with
gloo on CPU (one thread per process).

The default run has the CLI test (one run directory, written by rank 0 only; the same weights as one
process with the same global batch). Slow (`pytest -m slow tests/test_torchrun.py`): a killed rank
(the survivor names it, says how to resume, and the run resumes), and the Trainer under torchrun for
a GAN with n_critic (two optimizers, two DDP wrappers), a flow and an EM fit (the GMM on 2 ranks
equals the 1-rank fit).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genlab.runs import resume_run, train_run
from genlab.train import TrainConfig, Trainer
from genlab import make
from genlab.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "GENLAB_BACKEND": "gloo", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
       "GENLAB_DIST_TIMEOUT": "60"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
# a tiny flow on moons (10,000 points: 8,000 for training, a multiple of the world size)
FLOW = ["--set", "n_layers=2", "--set", "hidden=16", "--threads", "1", "--no-progress"]
SETTINGS = {"n_layers": "2", "hidden": "16"}


def _states_close(a: dict, b: dict, tol: float) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.slow  # two torch processes and a rendezvous: ~25 CPU-s; .ci/run's second step runs it
def test_torchrun_cli_writes_one_run_equal_to_one_process_with_the_global_batch(tmp_path):
    """2 processes x batch 128 == 1 process x batch 256: the data order is dealt out in strides, so
    each step's examples are the same, and DDP averages the ranks' mean gradients."""
    cmd = TORCHRUN + ["-m", "genlab", "train", "realnvp", "--data", "moons", "--epochs", "1", "--batch-size", "128",
                      "--out", "run", *FLOW]
    proc = subprocess.run(cmd, env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # rank 0 alone reports, with the figures of a finished run (issue 19: "done: None after None steps")
    done = [ln for ln in proc.stdout.splitlines() if ln.startswith("done:")]
    assert len(done) == 1 and "None" not in done[0].split(";")[0], proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no second directory from rank 1
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if "loss/nll" in ln]
    assert steps == sorted(set(steps)) and steps[-1] == 8000 // 256 + 1  # each step logged once
    ref = tmp_path / "one"
    train_run("realnvp", "moons", ref, config=SETTINGS,
              train=TrainConfig(epochs=1, batch_size=256, threads=1, device="cpu", progress=False))
    two, one = load_file(tmp_path / "run" / "model.safetensors"), load_file(ref / "model.safetensors")
    assert _states_close(two, one, 0) < 1e-4
    cfg2, cfg1 = (json.loads((d / "config.json").read_text())["stopped"] for d in (tmp_path / "run", ref))
    assert cfg2["step"] == cfg1["step"] and cfg2["best_val_loss"] == pytest.approx(cfg1["best_val_loss"], abs=1e-4)


def _worker_pids(agent: int) -> dict[int, int]:
    """rank -> pid of the processes torchrun's agent started (read from their environment)."""
    out = {}
    for pid in subprocess.run(["pgrep", "-P", str(agent)], capture_output=True, text=True).stdout.split():
        try:
            env = dict(kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in kv)
        except OSError:
            continue
        if "RANK" in env:
            out[int(env["RANK"])] = int(pid)
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the ranks' processes through /proc")
def test_a_killed_rank_is_named_by_the_survivor_and_the_run_resumes(tmp_path):
    cmd = TORCHRUN + ["-m", "genlab", "train", "realnvp", "--data", "moons", "--epochs", "500", "--batch-size", "64",
                      "--checkpoint-every", "20", "--out", "run", *FLOW]
    proc = subprocess.Popen(cmd, env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        metrics = tmp_path / "run" / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while not (metrics.exists() and metrics.read_text().count("loss/nll") >= 3):  # training has begun
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        os.kill(_worker_pids(proc.pid)[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=90)  # no hang: the survivor leaves within seconds
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "rank 1 of the 2 torchrun processes failed" in err, err[-3000:]
    assert "genlab resume run" in err
    model, _ = resume_run(tmp_path / "run", epochs=1)  # the checkpoint is whole: one process goes on
    assert json.loads((tmp_path / "run" / "config.json").read_text())["stopped"]["epoch"] >= 1


@pytest.mark.slow
def test_trainer_under_torchrun_keeps_ranks_equal_for_a_gan_a_flow_and_em(tmp_path):
    jobs = [
        {"family": "realnvp", "settings": {"n_layers": 2, "hidden": 16}, "n": 500, "n_val": 100, "epochs": 2,
         "batch_size": 32},
        # two objectives, two optimizers, the generator stepped every 2nd step, a gradient penalty
        {"family": "gan", "settings": {"hidden": 16, "latent_dim": 2, "loss": "wgan-gp", "n_critic": 2}, "n": 500,
         "n_val": 100, "epochs": 2, "batch_size": 32},
        {"family": "gmm", "settings": {"n_components": 3}, "n": 500, "n_val": 100, "epochs": 8, "batch_size": 32},
    ]
    proc = subprocess.run(TORCHRUN + [str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path), json.dumps(jobs)],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    torch.set_num_threads(1)
    for job in jobs:
        r = json.loads((tmp_path / f"{job['family']}.json").read_text())
        assert r["world"] == 2 and r["max_param_diff"] == 0.0, (job["family"], r)  # every rank holds the same state
        if job["family"] != "gmm":  # EM: every rank sees all rows, and takes its share inside the objective
            assert r["initial_diff"] > 0 and r["ranks_saw_different_data"], (job["family"], r)
        if job["family"] == "gmm":  # each rank's E step took half of the 400 training rows
            assert r["em_rows"] == [200], r
        if job["family"] == "gan":
            assert set(r["first_losses"]) == {"loss/critic", "loss/generator"}
        if job["family"] in ("realnvp", "gmm"):  # no noise drawn: one process with the global batch is the same run
            ds = load_dataset("moons", n=job["n"], seed=0)
            model = make(job["family"], ds.spec, seed=0, **job["settings"])
            Trainer(model, TrainConfig(epochs=job["epochs"], batch_size=2 * job["batch_size"], lr=1e-2, progress=False,
                                       device="cpu", patience=None, seed=0)).fit(ds.x[job["n_val"]:], None,
                                                                                 ds.x[:job["n_val"]])
            two = load_file(tmp_path / f"{job['family']}.safetensors")
            assert _states_close(two, model.state_dict(), 0) < 1e-4, job["family"]


def test_shutdown_frees_the_ddp_wrappers_before_it_destroys_the_process_group(tmp_path):
    """A finished trainer's DDP wrapper kept alive by a reference cycle would outlive the process
    group and be torn down with the interpreter, where gloo's threads abort the process (the exit
    -6 CI saw); `shutdown` collects it first, then ends the group."""
    import gc
    import weakref

    import torch.distributed as dist
    from genlab.train.distributed import shutdown

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 1))
        ddp.cycle = [ddp]  # as a trainer and its callbacks hold each other
        alive = weakref.ref(ddp)
        gc.disable()  # only shutdown's own collection may free it
        del ddp
        assert alive() is not None
        shutdown()
        assert alive() is None and not dist.is_initialized()
    finally:
        gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()
    shutdown()  # without a process group: nothing to do
