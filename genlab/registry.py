"""The family registry: ``families()``, ``get_family(name)``, ``make(name, spec, seed=, **config)``.

Families declare themselves with ``@register(name)`` (defined in `genlab.protocol`, re-exported
here); this module sits above ``models/`` and imports it to find every family.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from . import settings
from .data.spec import DataSpec
from .protocol import _REGISTRY, GenerativeModel, register  # noqa: F401  (register re-exported)


def _load_models() -> None:
    from . import models  # noqa: F401  (importing registers every family)


def families() -> list[str]:
    """Names of every registered family, sorted."""
    _load_models()
    return sorted(_REGISTRY)


def get_family(name: str) -> type[GenerativeModel]:
    """The class registered under ``name``; a clear error lists the known names."""
    _load_models()
    if name not in _REGISTRY:
        raise ValueError(f"unknown family {name!r}; known families: {', '.join(sorted(_REGISTRY))} "
                         "(see `genlab list`)")
    return _REGISTRY[name]


def config_fields(cls: type[GenerativeModel]) -> list[tuple[dataclasses.Field, Any]]:
    """(field, resolved type) for each hyperparameter of a family's config."""
    types_ = settings.field_types(cls.Config)
    return [(f, types_[f.name]) for f in dataclasses.fields(cls.Config) if f.name in types_]


def make_config(cls: type[GenerativeModel], values: dict[str, Any]) -> Any:
    """Build ``cls.Config`` from ``values`` with `genlab.settings.build`: renamed (old) keys are
    read as their new names, strings (from the command line) are parsed by the field's type,
    ``Literal`` choices are checked, and unknown keys raise an error that lists the valid ones."""
    return settings.build(cls.Config, values, where=cls.name)


def make(family: str, spec: DataSpec, seed: int | None = None, **config: Any) -> GenerativeModel:
    """Build the family ``family`` for data of ``spec`` with hyperparameters ``config``: the one
    constructor that runs, the Estimator and `genlab.load` use.

    Args:
        family: a registered family (`families`).
        spec: the data the model is for.
        seed: seed of the initial weights: the same seed gives the same weights, and the global
            random state is left as it was. None: draw them from the global random state.
        **config: the family's settings (``genlab train FAMILY --help``); strings are parsed.
    """
    cls = get_family(family)
    cfg = make_config(cls, config)
    with settings.construction_guard(family):  # an absurd size is refused before it is allocated
        if seed is None:
            return cls(spec, cfg)
        with torch.random.fork_rng(devices=[]):  # CPU only: models are built on the CPU
            torch.manual_seed(seed)
            return cls(spec, cfg)
