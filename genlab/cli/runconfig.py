"""``genlab train --config FILE``: the settings of a run read from a JSON file.

The file has the shape of a run's own ``config.json``, so a run is re-run with
``genlab train --config runs/x/config.json --out runs/y`` (same family, data, split, settings
and trainer settings, hence the same weights on the same machine), and a file written by hand
needs only the keys it sets::

    {"family": "vae", "data": "digits", "config": {"latent_dim": 8}, "trainer": {"epochs": 20}}

``data`` is a name or path, or ``{"name": ..., "n": ..., "split_seed": ...}`` as a run records
it. Flags given on the command line win over the file (``--set`` key by key). The other keys of
a run's record (``spec``, ``stopped``, checksums, versions) are ignored; any other key is refused.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KEYS = ("family", "data", "config", "trainer")
RUN_RECORD_KEYS = ("format", "spec", "model_sha256", "stopped", "versions", "generation")
DATA_KEYS = ("name", "n", "split_seed", "seed", "val", "test")


def read_run_config(path: str | Path) -> dict[str, Any]:
    """The checked contents of a ``--config`` file: ``family``, ``data`` (a dict with ``name`` and
    optionally ``n``, ``split_seed``, ``seed``, ``val``, ``test``), ``config`` and ``trainer`` dicts.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, not an object, an unknown key or a value of the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file; give a JSON file of settings, e.g. a "
                                "run's config.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"--config {path}: not a JSON file ({e}); write an object such as "
                         '{"family": "vae", "data": "digits", "trainer": {"epochs": 20}}') from None
    if not isinstance(raw, dict):
        raise ValueError(f"--config {path}: expected a JSON object with keys {', '.join(KEYS)}, "
                         f"got a {type(raw).__name__}")
    unknown = sorted(set(raw) - set(KEYS) - set(RUN_RECORD_KEYS))
    if unknown:
        raise ValueError(f"--config {path}: unknown key(s) {', '.join(unknown)}; a config file holds "
                         f"{', '.join(KEYS)} (the shape of a run's config.json)")
    out: dict[str, Any] = {"config": raw.get("config") or {}, "trainer": raw.get("trainer") or {}}
    for key in ("config", "trainer"):
        if not isinstance(out[key], dict):
            raise ValueError(f"--config {path}: {key!r} must be an object of settings, got {out[key]!r}")
    if raw.get("family") is not None:
        if not isinstance(raw["family"], str):
            raise ValueError(f"--config {path}: 'family' must be a family name, got {raw['family']!r}")
        out["family"] = raw["family"]
    data = raw.get("data")
    if isinstance(data, str):
        data = {"name": data}
    if data is not None:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError(f"--config {path}: 'data' must be a data set name or path, or an object with a "
                             f"'name', got {data!r}")
        extra = sorted(set(data) - set(DATA_KEYS))
        if extra:
            raise ValueError(f"--config {path}: unknown key(s) {', '.join(extra)} in 'data'; it holds "
                             f"{', '.join(DATA_KEYS)}")
        out["data"] = data
    return out


def family_from_config(argv: list[str]) -> list[str]:
    """``train --config FILE ...`` with the family named after ``train`` (taken from the file)
    when the command line names none; other command lines come back unchanged."""
    if len(argv) < 2 or argv[0] != "train" or not argv[1].startswith("--config"):
        return argv
    if argv[1] == "--config" and len(argv) > 2:
        path, rest = argv[2], argv[3:]
    elif argv[1].startswith("--config="):
        path, rest = argv[1].split("=", 1)[1], argv[2:]
    else:
        return argv
    family = read_run_config(path).get("family")
    if family is None:
        raise ValueError(f"--config {path} names no family: add \"family\": \"NAME\" to it, or name it: "
                         f"genlab train FAMILY --config {path}")
    return ["train", family, "--config", path, *rest]
