"""Run directories as commits (genlab.rundir): hand edits refused with what changed, one writer
at a time, readers that never see half a generation, stale files cleaned, per-epoch checkpoints,
budget stops that resume to the end. (Kills at every write point: tests/test_crash.py.)"""
from __future__ import annotations

import json
import threading

import pytest
import torch

import genlab
from genlab import io, rundir
from genlab.io import CorruptFile
from genlab.train import StopReason, TrainConfig, Trainer

from conftest import fit_tiny, tiny_model


@pytest.fixture
def run(moons, tmp_path):
    fit_tiny("realnvp", moons, out=tmp_path / "run", epochs=2)
    return tmp_path / "run"


def _edit(path, change):
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj, indent=2))


@pytest.mark.parametrize("change,said", [
    (lambda c: c["config"].update(scale_bound=float("nan")), "config.scale_bound"),
    (lambda c: c["config"].update(hidden="32"), "config.hidden"),
    (lambda c: c.update(surprise=1), "surprise added"),
    (lambda c: c["spec"].update(kind="binary"), "spec.kind"),
    (lambda c: c.pop("model_sha256"), "model_sha256 removed"),
    (lambda c: c["data"].update(name="circles") if "data" in c else c.update(data={"name": "circles"}), "data"),
])
def test_a_hand_edited_config_is_refused_naming_what_changed(run, change, said):
    _edit(run / "config.json", change)
    with pytest.raises(CorruptFile, match=f"changed after it was saved.*{said}"):
        genlab.load(run)


def test_reindenting_config_json_is_not_an_edit(run):
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(cfg, indent=7, sort_keys=False))
    genlab.load(run)


def test_a_config_that_is_a_json_list_is_refused(run):
    (run / "config.json").write_text("[1, 2]")
    (run / "manifest.json").unlink()  # as a run from before manifests
    with pytest.raises(CorruptFile, match="JSON list"):
        genlab.load(run)


def test_a_run_from_before_manifests_needs_its_weight_checksum(run):
    (run / "manifest.json").unlink()
    genlab.load(run)  # still loads, checked by config.json's own record
    _edit(run / "config.json", lambda c: c.pop("model_sha256"))
    with pytest.raises(CorruptFile, match="no model_sha256"):
        genlab.load(run)


def test_weights_resaved_in_float16_with_a_matching_record_are_refused(run):
    state = {k: v.half() if v.is_floating_point() else v for k, v in genlab.load(run).state_dict().items()}
    digest = io.save_tensors(run / "model.safetensors", state)
    _edit(run / "config.json", lambda c: c.update(model_sha256=digest))
    (run / "manifest.json").unlink()  # even a forger who also removes the manifest
    with pytest.raises(CorruptFile, match="float16"):
        genlab.load(run)


@pytest.mark.parametrize("key,value", [("seed", 5), ("step", 1), ("config", {"batch_size": 7})])
def test_a_hand_edited_trainer_json_is_refused_on_resume(run, moons, key, value):
    _edit(run / "trainer.json", lambda s: s.update({key: value}))
    tr = Trainer(tiny_model("realnvp", moons.spec), TrainConfig(epochs=3, progress=False, device="cpu"), out=run)
    with pytest.raises(CorruptFile, match="trainer.json was changed"):
        tr.fit(moons.x, resume=True)


def test_a_second_writer_is_refused_while_the_first_holds_the_run(run, moons):
    tr = Trainer(tiny_model("realnvp", moons.spec), TrainConfig(epochs=3, progress=False, device="cpu"), out=run)
    import subprocess
    import sys
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from genlab import rundir\n"
                               f"with rundir.lock({str(run)!r}):\n    print('held', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(genlab.io.RunLocked, match="being written by another process"):
            tr.fit(moons.x, resume=True)
    finally:
        holder.kill()
        holder.wait()
    tr.fit(moons.x, resume=True)  # the holder died: its lock went with it


def test_training_into_an_existing_run_from_python_is_refused(run, moons):
    tr = Trainer(tiny_model("realnvp", moons.spec), TrainConfig(epochs=1, progress=False, device="cpu"), out=run)
    with pytest.raises(ValueError, match="already holds a run"):
        tr.fit(moons.x)


def test_a_reader_never_sees_half_a_generation(moons, tmp_path):
    """genlab.load in a loop while a run commits a checkpoint every step."""
    out, errors, loads = tmp_path / "run", [], [0]
    first = threading.Event()

    def read():
        first.wait(60)
        while not done.is_set():
            try:
                genlab.load(out)
                loads[0] += 1
            except Exception as e:  # noqa: BLE001  (any failure is the finding)
                errors.append(repr(e))
    done = threading.Event()
    reader = threading.Thread(target=read)
    reader.start()
    try:
        fit_tiny("realnvp", moons, out=out, epochs=6, checkpoint_every=1,
                 callbacks=[lambda tr, rec: first.set()])
    finally:
        first.set()
        done.set()
        reader.join()
    assert not errors and loads[0] > 0


def test_stale_temporary_and_uncommitted_files_are_removed_at_the_next_start(run, moons):
    (run / ".trainer.json.123.abcd.tmp").write_text("half")
    gen = rundir.read_manifest(run)["generation"]
    (run / f".checkpoint.safetensors.gen{gen + 1}").write_bytes(b"uncommitted")
    genlab.load(run)  # readers ignore them
    tr = Trainer(tiny_model("realnvp", moons.spec), TrainConfig(epochs=3, progress=False, device="cpu"), out=run)
    tr.fit(moons.x, resume=True)
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp") or ".gen" in p.name]


def test_a_commit_killed_after_its_manifest_is_completed_by_the_next_writer_and_read_meanwhile(run, moons):
    before = genlab.load(run).state_dict()
    model = tiny_model("realnvp", moons.spec, seed=3)
    files = io.model_files(model, io.read_config(run))
    gen = rundir.read_manifest(run)["generation"] + 1
    for name, data in files.items():  # what a commit leaves when killed right after its manifest
        (run / f".{name}.gen{gen}").write_bytes(data)
    manifest = rundir.read_manifest(run)
    manifest["generation"] = gen
    manifest["files"].update({n: rundir._digest(n, d) for n, d in files.items()})
    manifest["json"]["config.json"] = json.loads(files["config.json"])
    rundir.write_json(run / rundir.MANIFEST, manifest)
    loaded = genlab.load(run)  # a reader takes the committed generation from the pending copies
    assert loaded.run_generation == gen
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v, rtol=0, atol=0)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    done = rundir.recover(run)
    assert len(done) == 2 and not list(run.glob(".*.gen*"))
    genlab.load(run)


def test_every_epoch_is_checkpointed_so_a_run_killed_before_checkpoint_every_resumes(moons, tmp_path):
    class Kill(Exception):
        pass

    def kill(tr, rec):
        if rec["step"] == 8:  # in epoch 2 (6 steps each), long before checkpoint_every
            raise Kill
    with pytest.raises(Kill):
        fit_tiny("realnvp", moons, out=tmp_path, epochs=3, checkpoint_every=500, callbacks=[kill])
    assert json.loads((tmp_path / "trainer.json").read_text())["step"] == 6  # the end of epoch 1


def test_a_budget_stop_with_patience_resumes_to_the_end(moons, tmp_path):
    """Budget stops validate mid-epoch; they must not count as epochs without gain (else an
    early stop, a non-resumable reason, ends the run at the first resume)."""
    full, _ = fit_tiny("realnvp", moons, out=tmp_path / "full", epochs=3, patience=1)
    n_val = max(2, len(moons) // 8)
    tr = None
    for _ in range(40):
        tr = Trainer(tiny_model("realnvp", moons.spec),
                     TrainConfig(epochs=3, batch_size=64, progress=False, device="cpu", patience=1, max_minutes=0.0),
                     out=tmp_path / "cut")
        tr.fit(moons.x[n_val:], None, moons.x[:n_val], resume=(tmp_path / "cut" / rundir.MANIFEST).exists())
        if tr.stopped is not StopReason.TIME_BUDGET:
            break
    assert tr.stopped is not StopReason.TIME_BUDGET
    for k, v in full.state_dict().items():
        torch.testing.assert_close(tr.model.state_dict()[k], v, rtol=0, atol=0)


def test_a_model_file_too_large_for_memory_is_refused_with_its_size(run, monkeypatch):
    from pathlib import Path
    real = Path.read_bytes

    def capped(self):  # what a memory cap (ulimit -v) does to reading a file of many GiB
        if self.name.endswith(".safetensors"):
            raise MemoryError
        return real(self)
    monkeypatch.setattr(Path, "read_bytes", capped)
    with pytest.raises(ValueError, match=r"model.safetensors \(0.0 GiB\) does not fit in the memory"):
        genlab.load(run)
