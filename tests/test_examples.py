"""The scripts in examples/ run as a user runs them (a fresh process, small budgets) and print and
write what they promise. Slow (each process imports torch and trains): ``pytest -m slow
tests/test_examples.py``; `.ci/run` runs it in its slow step."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    """Run ``examples/NAME.py ARGS`` from ``cwd`` and return its output; fail with it on a non-zero exit."""
    env = {**os.environ, "MPLBACKEND": "Agg"}  # threads: conftest's one-thread variables are inherited
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"examples/{name}.py exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_density_compares_families_and_draws_samples(tmp_path):
    # no --out: the default folder is examples-out/density under the working directory
    out = run_example("density", "--n", "600", "--epochs", "2", cwd=tmp_path)
    rows = dict(re.findall(r"^(gaussian|gmm|kde|realnvp)\s+(-?\d+\.\d+) ± \d+\.\d+", out, re.M))
    assert set(rows) == {"gaussian", "gmm", "kde", "realnvp"}, out
    assert float(rows["gmm"]) < float(rows["gaussian"]), out  # 12 components beat one Gaussian on moons
    assert re.search(r"^best: \w+, -?\d+\.\d+ nats per example better than the gaussian baseline", out, re.M), out
    png = tmp_path / "examples-out" / "density" / "samples.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sklearn_pipeline_prints_its_three_parts(tmp_path):
    out = run_example("sklearn_pipeline", "--out", str(tmp_path / "sk"), cwd=tmp_path)
    for heading in ("1. GridSearchCV over genlab.Estimator('gmm')", "2. GridSearchCV over GenerativeClassifier('gmm')",
                    "3. 30% of the test pixels missing"):
        assert heading in out, out
    accuracy = re.search(r"test accuracy (\d\.\d+), LogisticRegression (\d\.\d+)", out)
    assert accuracy and float(accuracy[1]) > 0.9 and float(accuracy[2]) > 0.9, out
    rmse = dict(re.findall(r"^\s+(GenerativeImputer|SimpleImputer)\S*\s+(\d+\.\d+)\s+\d\.\d+$", out, re.M))
    assert float(rmse["GenerativeImputer"]) < float(rmse["SimpleImputer"]), out  # p(missing | observed) beats the mean
    assert (tmp_path / "sk" / "results.txt").read_text().startswith("1. GridSearchCV")
    assert not (tmp_path / "examples-out").exists()  # --out is honoured


def test_run_directory_trains_resumes_loads_and_compresses(tmp_path):
    out_dir = tmp_path / "rd"
    out = run_example("run_directory", "--out", str(out_dir), "--seconds", "2", "--epochs", "4", cwd=tmp_path)
    steps = dict(re.findall(r"^(first|resumed)\s+.+?\s+(\d+)\s+\d+\s+\d+\.\d+$", out, re.M))
    assert set(steps) == {"first", "resumed"}, out
    assert 0 < int(steps["first"]) <= int(steps["resumed"]), out
    assert "decompressed: identical to the original" in out, out
    run = out_dir / "made-digits"
    for name in ("config.json", "model.safetensors", "checkpoint.safetensors", "manifest.json"):
        assert (run / name).is_file(), name
    assert (out_dir / "samples.png").is_file() and (out_dir / "test-digits.glz").stat().st_size > 0
    # run again into the same folder: the example replaces its own run ...
    run_example("run_directory", "--out", str(out_dir), "--seconds", "1", "--epochs", "1", cwd=tmp_path)
    # ... and refuses to touch one it did not write
    other = tmp_path / "other"
    (other / "made-digits").mkdir(parents=True)
    (other / "made-digits" / "config.json").write_text('{"family": "made"}')
    proc = subprocess.run([sys.executable, str(EXAMPLES / "run_directory.py"), "--out", str(other)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "was not written by this example" in proc.stderr
    assert (other / "made-digits" / "config.json").exists()
