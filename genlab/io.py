"""Run directories: safetensors for tensors, JSON for everything else; nothing is pickled.

``runs/<name>/``: ``config.json`` (family, DataSpec, config, data, versions, checksums),
``model.safetensors``, ``checkpoint.safetensors`` + ``trainer.json`` (resume),
``metrics.jsonl``, ``samples.png``. Every write goes to a temporary file first and is moved into
place with ``os.replace``, so an interrupted write never destroys what was saved before. Loading
checks a SHA-256 recorded at save time, so a truncated, corrupted or edited file gives a clear
error; safetensors and JSON cannot execute code.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import settings
from .data.spec import DataSpec
from .protocol import GenerativeModel
from .registry import get_family, make

FORMAT = "genlab-run/1"


class CorruptFile(ValueError):
    """A run file that cannot be trusted: truncated, corrupted, edited or of the wrong format."""


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; is this a genlab run directory "
                                "(made by `genlab train` or genlab.save)?")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFile(f"{path} is not valid JSON ({e}); the file is corrupted or was edited "
                          "by hand: restore it or train again") from None


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write tensors atomically; returns the SHA-256 of the bytes written."""
    data = st_save({k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()})
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def load_tensors(path: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read a safetensors file, checking its SHA-256 when one was recorded."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; the run is incomplete (was training "
                                "interrupted before the first save?)")
    data = path.read_bytes()
    if not data:
        raise CorruptFile(f"{path} is empty; the run is damaged: train again or restore the file")
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise CorruptFile(f"{path} does not match the checksum recorded when it was saved: it was "
                          "truncated, corrupted or modified. Restore it or train again")
    try:
        return st_load(data)
    except (SafetensorError, Exception) as e:  # safetensors raises several types on bad headers
        raise CorruptFile(f"{path} is not a valid safetensors file ({e}); restore it or train again") from None


def versions() -> dict[str, str]:
    import numpy

    from .version import __version__
    return {"genlab": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": sys.version.split()[0], "platform": platform.platform()}


def config_dict(model: GenerativeModel) -> dict[str, Any]:
    """The JSON form of a model's config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(model.config)))


def save(model: GenerativeModel, run_dir: str | Path, **extra: Any) -> Path:
    """Save ``model`` to ``run_dir/model.safetensors`` + ``config.json``.

    Args:
        extra: more JSON-able entries for config.json (``data=``, ``trainer=``).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    digest = save_tensors(run_dir / "model.safetensors", model.state_dict())
    cfg_path = run_dir / "config.json"
    old = read_json(cfg_path) if cfg_path.is_file() else {}
    old.update(extra)
    old.update({"format": FORMAT, "family": model.name, "spec": model.spec.to_dict(),
                "config": config_dict(model), "versions": versions(), "model_sha256": digest})
    write_json(cfg_path, old)
    return run_dir


def build(cfg: dict[str, Any], seed: int | None = None) -> GenerativeModel:
    """Construct (untrained) the model described by a config.json dictionary, with `genlab.make`
    (``seed``: of the initial weights). Settings renamed since the run was saved are read under
    their new names."""
    if cfg.get("format") != FORMAT:
        raise CorruptFile(f"config.json has format {cfg.get('format')!r}, expected {FORMAT!r}: "
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
    for name, t in state.items():
        if name in own and own[name].shape != t.shape:
            mod_name, _, attr = name.rpartition(".")
            mod = model.get_submodule(mod_name) if mod_name else model
            setattr(mod, attr, torch.empty_like(t, dtype=own[name].dtype))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CorruptFile(f"{where} does not fit the model described by config.json ({e})") from None


def load(run_dir: str | Path, map_location: str | torch.device = "cpu") -> GenerativeModel:
    """Load the trained model of a run directory (in eval mode)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    cfg = read_json(run_dir / "config.json")
    model = build(cfg)
    state = load_tensors(run_dir / "model.safetensors", cfg.get("model_sha256"))
    load_state(model, state, str(run_dir / "model.safetensors"))
    return model.to(map_location).eval()
