"""The family registry: ``families()``, ``get_family(name)``, ``make(name, spec, seed=, **config)``.

Families declare themselves with ``@register(name)`` (defined in `genlab.protocol`, re-exported
here); this module sits above ``models/`` and imports it to find every family.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

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
    hints = typing.get_type_hints(cls.Config)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls.Config)]


def make_config(cls: type[GenerativeModel], values: dict[str, Any]) -> Any:
    """Build ``cls.Config`` from ``values``; strings (from the command line) are parsed by the
    field's type. Unknown keys raise an error that lists the valid ones."""
    fields = {f.name: t for f, t in config_fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{cls.name}: unknown setting(s) {unknown}; valid settings: "
                         f"{', '.join(fields) or '(none)'}")
    parsed = {k: _coerce(v, fields[k], f"{cls.name}.{k}") for k, v in values.items()}
    return cls.Config(**parsed)


def make(name: str, spec: DataSpec, **config: Any) -> GenerativeModel:
    """Build the family ``name`` for data of ``spec`` with hyperparameters ``config``."""
    cls = get_family(name)
    return cls(spec, make_config(cls, config))


def _coerce(value: Any, typ: Any, where: str) -> Any:
    if not isinstance(value, str):
        if isinstance(value, list) and typing.get_origin(typ) is tuple:
            return tuple(value)
        return value
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(f"{where}: cannot parse {value!r}: {'; '.join(errors)}")
    if origin is tuple:
        parts = [p for p in value.strip("()[] ").split(",") if p.strip()]
        inner = args[0] if args else str
        return tuple(_coerce(p.strip(), inner, where) for p in parts)
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if typ is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{where}: expected true/false, got {value!r}")
    if typ in (int, float, str):
        try:
            return typ(value)
        except ValueError:
            raise ValueError(f"{where}: expected {typ.__name__}, got {value!r}") from None
    return value
