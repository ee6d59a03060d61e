"""Run directories: safetensors for tensors, JSON for everything else; nothing is pickled.

``runs/<name>/``: ``config.json`` (family, DataSpec, config, data, versions, checksums),
``model.safetensors``, ``checkpoint.safetensors`` + ``trainer.json`` (resume),
``metrics.jsonl``, ``samples.png``, and ``manifest.json``: the model, config and checkpoint files
change together as one commit (`genlab.rundir`), so a process killed at any instant leaves a
consistent run. Loading checks the SHA-256 of every file, so a truncated, corrupted or edited
file gives a clear error; safetensors and JSON cannot execute code.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import rundir, settings
from .data.spec import DataSpec
from .protocol import GenerativeModel
from .registry import get_family, make

from .rundir import CorruptFile, RunLocked, atomic_write, read_json  # noqa: F401  (genlab.io's API)

FORMAT = "genlab-run/1"


def write_json(path: str | Path, obj: Any) -> None:
    """Write a JSON file atomically (a file outside the run's commits, e.g. results.json)."""
    rundir.write_json(path, obj)


def tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """The safetensors bytes of ``tensors`` (copied to the CPU)."""
    return st_save({k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()})


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write tensors atomically to a file of their own (not part of a run's commits); returns
    the SHA-256 of the bytes written."""
    data = tensor_bytes(tensors)
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def parse_tensors(data: bytes, where: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Tensors from safetensors bytes, checking their SHA-256 when one is given."""
    if not data:
        raise CorruptFile(f"{where} is empty; the run is damaged: train again or restore the file")
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise CorruptFile(f"{where} does not match the checksum recorded when it was saved: it was "
                          "truncated, corrupted or modified. Restore it or train again")
    try:
        return st_load(data)
    except Exception as e:  # safetensors raises several types on bad headers
        raise CorruptFile(f"{where} is not a valid safetensors file ({e}); restore it or train again") from None


def load_tensors(path: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read a safetensors file, checking its SHA-256 when one was recorded."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; the run is incomplete (was training "
                                "interrupted before the first save?)")
    return parse_tensors(path.read_bytes(), path, sha256)


def versions() -> dict[str, str]:
    import numpy

    from .version import __version__
    return {"genlab": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": sys.version.split()[0], "platform": platform.platform()}


def config_dict(model: GenerativeModel) -> dict[str, Any]:
    """The JSON form of a model's config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(model.config)))


def model_files(model: GenerativeModel, old: dict[str, Any] | None = None, **extra: Any) -> dict[str, bytes]:
    """``model.safetensors`` and ``config.json`` of ``model``, as bytes for `rundir.commit`:
    config.json is ``old`` (the run's config so far) updated with ``extra`` and the model's entries."""
    weights = tensor_bytes(model.state_dict())
    cfg = dict(old or {})
    cfg.update(extra)
    cfg.update({"format": FORMAT, "family": model.name, "spec": model.spec.to_dict(),
                "config": config_dict(model), "versions": versions(),
                "model_sha256": hashlib.sha256(weights).hexdigest()})  # read by genlab before manifests
    return {"model.safetensors": weights, "config.json": rundir.json_bytes(cfg)}


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The committed ``config.json`` of a run (verified: a hand edit is refused, naming what changed)."""
    snap = rundir.read(run_dir, ["config.json"])
    return _config(snap.files["config.json"], Path(run_dir) / "config.json")


def _config(data: bytes, where: Path) -> dict[str, Any]:
    cfg = rundir.parse_json(data, where)
    if not isinstance(cfg, dict):
        raise CorruptFile(f"{where} holds a JSON {type(cfg).__name__}, not an object: it is not a genlab "
                          "run's config (restore it or train again)")
    return cfg


def save(model: GenerativeModel, run_dir: str | Path, **extra: Any) -> Path:
    """Save ``model`` to ``run_dir/model.safetensors`` + ``config.json`` as one commit (see
    `genlab.rundir`); entries already in config.json are kept.

    Args:
        extra: more JSON-able entries for config.json (``data=``, ``trainer=``).
    """
    run_dir = Path(run_dir)
    with rundir.lock(run_dir):
        rundir.recover(run_dir)
        old = read_config(run_dir) if (run_dir / "config.json").is_file() else {}
        rundir.commit(run_dir, model_files(model, old, **extra))
    return run_dir


def build(cfg: dict[str, Any], seed: int | None = None) -> GenerativeModel:
    """Construct (untrained) the model described by a config.json dictionary, with `genlab.make`
    (``seed``: of the initial weights). Settings renamed since the run was saved are read under
    their new names."""
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        got = cfg.get("format") if isinstance(cfg, dict) else f"a JSON {type(cfg).__name__}"
        raise CorruptFile(f"config.json has format {got!r}, expected {FORMAT!r}: "
                          "not a genlab run, or made by an incompatible version")
    try:
        cls = get_family(cfg["family"])
        spec = DataSpec.from_dict(cfg["spec"])
        # old setting names first: a saved "seed" must not be taken for make's own seed argument
        return make(cfg["family"], spec, seed=seed, **settings.saved(cls.Config, cfg["config"], cls.name))
    except (KeyError, TypeError) as e:
        raise CorruptFile(f"config.json is missing or has a malformed entry ({e}); restore it") from None


def load_state(model: GenerativeModel, state: dict[str, torch.Tensor], where: str) -> None:
    """``load_state_dict`` that first resizes data-sized buffers (e.g. KDE points)."""
    own = dict(model.named_buffers())
    expected = model.state_dict()
    for name, t in state.items():
        if name in expected and t.dtype != expected[name].dtype:
            raise CorruptFile(f"{where}: tensor {name} is {t.dtype}, the model keeps it as "
                              f"{expected[name].dtype}; the weights were re-saved by other means: "
                              "restore the file or train again")
        if name in own and own[name].shape != t.shape:
            mod_name, _, attr = name.rpartition(".")
            mod = model.get_submodule(mod_name) if mod_name else model
            setattr(mod, attr, torch.empty_like(t, dtype=own[name].dtype))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CorruptFile(f"{where} does not fit the model described by config.json ({e})") from None


def load(run_dir: str | Path, map_location: str | torch.device = "cpu") -> GenerativeModel:
    """Load the trained model of a run directory (in eval mode), from its last committed
    generation (`genlab.rundir`): every file verified, so a truncated, corrupted or hand-edited
    run is refused with the reason, and a run being written is read whole. The generation read
    is ``model.run_generation`` (None for a run saved before manifests)."""
    snap = rundir.read(run_dir, ["config.json", "model.safetensors"])
    where = Path(run_dir) / "model.safetensors"
    cfg = _config(snap.files["config.json"], Path(run_dir) / "config.json")
    if snap.generation is None and not cfg.get("model_sha256"):
        raise CorruptFile(f"{Path(run_dir) / 'config.json'} has no model_sha256: the checksum of the "
                          "weights was removed, so they cannot be verified; restore it or train again")
    model = build(cfg)
    # the manifest verified the bytes; a run from before manifests is checked by its own record
    state = parse_tensors(snap.files["model.safetensors"], where,
                          cfg.get("model_sha256") if snap.generation is None else None)
    load_state(model, state, str(where))
    model.run_generation = snap.generation
    return model.to(map_location).eval()
