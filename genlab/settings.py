"""Settings dataclasses (a family's ``Config``, `TrainConfig`, the evaluation settings): the one
place where values are read into them and checked.

A dataclass's type hints are its specification. A string option is typed ``Literal[...]`` and
`validate` checks every such field against its choices, whatever built the object (the command
line, a saved run, a Python call), so no module writes its own ``if x not in (...)`` check.
`build` turns a plain dict (command-line strings or JSON) into the dataclass: it maps renamed
keys (a ClassVar ``renamed = {"old": "new"}`` on the dataclass, so that saved runs keep loading
after a setting gets a better name), refuses unknown keys with the list of valid ones, parses
strings by the field's type and validates.

This module imports nothing from genlab, so every layer can use it.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
import warnings
from typing import Any

_NONE_WORDS = ("none", "null")


@functools.lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved type hint, for the init fields of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def choices_of(hint: Any) -> tuple[tuple[Any, ...] | None, bool]:
    """(the choices of a ``Literal`` hint or None, whether None is also allowed)."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        optional = type(None) in args
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None, optional
        hint = rest[0]
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint), optional
    return None, optional


def choice_error(where: str, value: Any, choices: tuple[Any, ...]) -> ValueError:
    """The error for a value outside a setting's choices: it names the setting, the value and the choices."""
    listed = ", ".join(repr(c) for c in choices)
    return ValueError(f"{where} must be one of {listed}; got {value!r}")


def validate(obj: Any, where: str | None = None) -> None:
    """Check every ``Literal`` field of the dataclass instance ``obj`` against its choices.

    Args:
        obj: a settings dataclass instance.
        where: the prefix of the setting's name in the error (default: the class name).
    Raises:
        ValueError: naming the setting, the bad value and the choices.
    """
    where = where or type(obj).__name__
    for name in field_types(type(obj)):
        check_value(type(obj), name, getattr(obj, name), where)


def check_value(cls: type, name: str, value: Any, where: str | None = None) -> None:
    """Check one value of the field ``name`` of the settings dataclass ``cls`` (see `validate`)."""
    choices, optional = choices_of(field_types(cls)[name])
    if choices is None or (value is None and optional):
        return
    # `True in (1,)` holds in Python: compare types too, so a bool never passes for an int choice
    if not any(value == c and type(value) is type(c) for c in choices):
        raise choice_error(f"{where or cls.__name__}.{name}", value, choices)


def renamed_keys(cls: type) -> dict[str, str]:
    """Old name -> current name of the settings of ``cls`` that were renamed."""
    return dict(getattr(cls, "renamed", {}) or {})


def retired_keys(cls: type) -> dict[str, str]:
    """Old name -> what replaced it, for settings of ``cls`` that were removed (a ClassVar
    ``retired``): a saved run that holds one still loads, with a warning that says so."""
    return dict(getattr(cls, "retired", {}) or {})


def saved(cls: type, values: dict[str, Any], where: str | None = None) -> dict[str, Any]:
    """``values`` of a config saved by an older version, as the current ``cls`` reads them: renamed
    and retired keys as `upgrade` does, and every setting added since the run was saved (a ClassVar
    ``added = {"name": value}``: the value that reproduces the behaviour from before the setting
    existed) filled in where the saved values lack it, so that the run rebuilds the same model even
    where the setting's default for new runs differs."""
    values = upgrade(cls, values, where)
    for name, before in dict(getattr(cls, "added", {}) or {}).items():
        values.setdefault(name, before)
    return values


def upgrade(cls: type, values: dict[str, Any], where: str | None = None) -> dict[str, Any]:
    """``values`` as the current ``cls`` names them: every old name of a renamed setting
    (``cls.renamed``) replaced by its new name, every retired one (``cls.retired``) dropped with a
    warning. This is how a config saved by an older version is read.
    """
    where = where or cls.__name__
    values = dict(values)
    for old, instead in retired_keys(cls).items():
        if old in values:
            warnings.warn(f"{where}.{old} is no longer a setting and is ignored: {instead}", stacklevel=3)
            values.pop(old)
    for old, new in renamed_keys(cls).items():
        if old in values:
            if new in values:
                raise ValueError(f"{where}: both {old!r} and its new name {new!r} are given; keep {new!r}")
            values[new] = values.pop(old)
    return values


def build(cls: type, values: dict[str, Any], where: str | None = None) -> Any:
    """Make the settings dataclass ``cls`` from ``values`` (strings from the command line, JSON
    values from a saved run, or Python values).

    Old names listed in ``cls.renamed`` are read as their new names; those in ``cls.retired`` are
    dropped with a warning. Unknown keys raise an error
    that lists the valid ones; strings are parsed by the field's type; ``Literal`` fields are
    validated (`validate`).
    """
    where = where or cls.__name__
    values = upgrade(cls, values, where)
    types_ = field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown}; valid settings: {', '.join(types_) or '(none)'}")
    obj = cls(**{k: coerce(v, types_[k], f"{where}.{k}") for k, v in values.items()})
    validate(obj, where)
    return obj


def coerce(value: Any, typ: Any, where: str) -> Any:
    """``value`` read as the type ``typ``: strings are parsed (``"none"`` for an optional field,
    ``"a,b"`` for a tuple, ``true/false`` for a bool); JSON lists become tuples; other values pass."""
    if not isinstance(value, str):
        if isinstance(value, list) and typing.get_origin(typ) is tuple:
            return tuple(value)
        return value
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in _NONE_WORDS and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, where)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(f"{where}: cannot parse {value!r}: {'; '.join(errors)}")
    if origin is tuple:
        parts = [p for p in value.strip("()[] ").split(",") if p.strip()]
        inner = args[0] if args else str
        return tuple(coerce(p.strip(), inner, where) for p in parts)
    if origin is typing.Literal:
        for c in args:  # a Literal of numbers reads its string form
            if str(c) == value:
                return c
        raise choice_error(where, value, args)
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
