"""The run the crash-consistency tests kill: `genlab.runs.train_run` (what `genlab train` calls) of
a tiny realnvp on moons.

``python crash_worker.py`` is a small fork server: it imports genlab once, then for each JSON
line on stdin (the keyword arguments of `train`) forks a child that runs `train` and writes the
child's exit status (negative: killed by that signal) as a line on stdout; with ``kill_after``
(seconds) the server kills the child itself at that instant. ``train(out, crash_at)``
kills itself (SIGKILL) at the ``crash_at``-th write point of `genlab.rundir` (0: runs to the end);
``crash_log`` lists every write point passed. The server itself never computes (no thread pools
exist when it forks).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback

import sklearn.datasets  # noqa: F401  (imported here, once in the forkserver: moons needs it)
import torch
import torch._dynamo  # noqa: F401  (torch.optim imports it on first use: seconds per child otherwise)

import genlab.models  # noqa: F401  (every family: imported once here, not again in each child)
from genlab import rundir
from genlab.runs import resume_run, train_run
from genlab.train import TrainConfig

FAMILY, DATA, N = "realnvp", "moons", 256
CONFIG = {"n_layers": 2, "hidden": 16}


def train_config() -> TrainConfig:
    return TrainConfig(epochs=3, batch_size=64, checkpoint_every=3, seed=0, ema=0.9, lr_schedule="cosine",
                       progress=False, device="cpu", threads=1)


def train(out: str, crash_at: int = 0, crash_log: str | None = None, resume: bool = False) -> None:
    torch.set_num_threads(1)
    rundir._points_passed = 0
    os.environ.pop("GENLAB_CRASH_AT", None)
    os.environ.pop("GENLAB_CRASH_LOG", None)
    if crash_at:
        os.environ["GENLAB_CRASH_AT"] = str(crash_at)
    if crash_log:
        os.environ["GENLAB_CRASH_LOG"] = crash_log
    if resume:
        resume_run(out)
    else:
        train_run(FAMILY, DATA, out, config=CONFIG, train=train_config(), n=N)


def serve() -> None:
    for line in sys.stdin:
        kw = json.loads(line)
        kill_after = kw.pop("kill_after", None)  # seconds: SIGKILL from outside, at a chosen instant
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                train(**kw)
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        status = None
        if kill_after is not None:
            deadline = time.monotonic() + kill_after
            while status is None and time.monotonic() < deadline:
                done, st = os.waitpid(pid, os.WNOHANG)
                status = st if done else None
                time.sleep(0.0005)
            if status is None:
                os.kill(pid, signal.SIGKILL)
        if status is None:
            _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps(code), flush=True)


if __name__ == "__main__":
    serve()
