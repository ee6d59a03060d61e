"""Crash consistency: a run killed (SIGKILL, as ``kill -9``) at any write point resumes to the
same weights as an uninterrupted run, and `genlab.load` works on it at every instant after its
first commit. Ctrl-C / SIGTERM and a time-budget stop resume bit-exactly too.

The default run kills at the first instant of each kind of write point; ``pytest -m slow
tests/test_crash.py`` (the second step of ``.ci/run``) kills at every one.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import genlab
from genlab import io, rundir

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="needs fork and SIGKILL (POSIX)")


@pytest.fixture(scope="module")
def ctx():
    """The fork server of crash_worker.py: one import of genlab, one fork per run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "crash_worker.py")], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    yield server
    server.stdin.close()
    server.wait(30)


def _run(server, out: str, **kw) -> int:
    """Exit status of one run (negative: the signal that killed it)."""
    server.stdin.write(json.dumps({"out": out, **kw}) + "\n")
    server.stdin.flush()
    line = server.stdout.readline()
    assert line, "the crash worker died (its error is above)"
    return json.loads(line)


def _weights(run: Path) -> tuple[dict, dict]:
    """The saved model's weights and the checkpoint's training weights."""
    model = genlab.load(run).state_dict()
    snap = rundir.read(run, ["checkpoint.safetensors"])
    return model, io.parse_tensors(snap.files["checkpoint.safetensors"], run)


def _assert_same(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{what}: {k}")


def _steps(run: Path) -> list[int]:
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "val_loss" not in r]


@pytest.fixture(scope="module")
def reference(ctx, tmp_path_factory):
    """An uninterrupted run and the list of its write points."""
    d = tmp_path_factory.mktemp("crash")
    log = d / "points.txt"
    assert _run(ctx, str(d / "ref"), crash_log=str(log)) == 0
    points = [ln.split(" ", 1)[1] for ln in log.read_text().splitlines()]
    return d / "ref", points


def _kill_and_recover(ctx, reference, tmp_path: Path, at: int) -> None:
    ref, points = reference
    run = tmp_path / f"run{at}"
    code = _run(ctx, str(run), crash_at=at)
    assert code == -signal.SIGKILL, f"point {at} ({points[at - 1]}): exit code {code}"
    if (run / rundir.MANIFEST).exists():
        genlab.load(run)  # a consistent generation, whatever the instant
        assert _run(ctx, str(run), resume=True) == 0
    else:  # killed before the first commit: nothing to resume, and training again is allowed
        with pytest.raises(FileNotFoundError):
            genlab.load(run)
        assert _run(ctx, str(run)) == 0
    ref_model, ref_ckpt = _weights(ref)
    model, ckpt = _weights(run)
    _assert_same(ref_model, model, f"saved model after a kill at point {at} ({points[at - 1]})")
    _assert_same(ref_ckpt, ckpt, f"checkpoint after a kill at point {at} ({points[at - 1]})")
    assert _steps(run) == _steps(ref)
    left = [p.name for p in run.iterdir() if p.name.endswith(".tmp") or ".gen" in p.name]
    assert not left, f"stale files after recovery: {left}"


def _first_of_each_kind(points: list[str]) -> list[int]:
    """The first instant of each kind of write point."""
    first = {}
    for i, p in enumerate(points, 1):
        first.setdefault(p, i)
    return sorted(first.values())


def test_each_kind_of_write_point(ctx, reference, tmp_path):
    points = reference[1]
    assert len(points) > 40 and "committed" in points
    for at in _first_of_each_kind(points):
        _kill_and_recover(ctx, reference, tmp_path, at)


@pytest.mark.slow
def test_every_write_point(ctx, reference, tmp_path):
    for at in range(1, len(reference[1]) + 1):
        _kill_and_recover(ctx, reference, tmp_path, at)
