"""Settings dataclasses (a family's ``Config``, `TrainConfig`, the evaluation settings): the one
place where values are read into them and checked.

A dataclass's type hints are its specification. A string option is typed ``Literal[...]`` and
`validate` checks every such field against its choices, whatever built the object (the command
line, a saved run, a Python call), so no module writes its own ``if x not in (...)`` check.
`build` turns a plain dict (command-line strings or JSON) into the dataclass: it maps renamed
keys (a ClassVar ``renamed = {"old": "new"}`` on the dataclass, so that saved runs keep loading
after a setting gets a better name), refuses unknown keys with the list of valid ones, parses
strings by the field's type and validates.

`validate` also checks each value against its type hint (``True`` is no ``int``; floats finite;
tuples element by element) and a range declared in the field's metadata (``min`` / ``max``
inclusive, ``above`` strict), so a NaN or a string from a hand-edited config.json or a Python
caller is refused by name. `saved` refuses a string where a saved config.json must hold a number
or a boolean (only the command line hands over text to parse). `construction_guard` refuses a
model whose parameters and buffers would not fit in memory, before its weights are filled.

This module imports nothing from genlab, so every layer can use it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import numbers
import os
import re
import threading
import types
import typing
import warnings
from typing import Any, Iterator

_NONE_WORDS = ("none", "null")


class SettingTypeError(TypeError, ValueError):
    """A setting holds a value of the wrong type (a ValueError too, so every caller that reports
    bad user input reports this one)."""


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
    """Check every field of the dataclass instance ``obj``: ``Literal`` choices, the type hint
    (numbers finite, ``bool`` never taken for ``int``) and a declared range (``min`` / ``max`` /
    ``above`` in the field's metadata).

    Args:
        obj: a settings dataclass instance.
        where: the prefix of the setting's name in the error (default: the class name).
    Raises:
        ValueError: naming the setting, the bad value and what it must be (`SettingTypeError`,
            also a TypeError, for a value of the wrong type).
    """
    where = where or type(obj).__name__
    for name in field_types(type(obj)):
        check_value(type(obj), name, getattr(obj, name), where)


def check_value(cls: type, name: str, value: Any, where: str | None = None) -> None:
    """Check one value of the field ``name`` of the settings dataclass ``cls`` (see `validate`)."""
    hint = field_types(cls)[name]
    label = f"{where or cls.__name__}.{name}"
    choices, optional = choices_of(hint)
    if value is None and optional:
        return
    if choices is not None:
        # `True in (1,)` holds in Python: compare types too, so a bool never passes for an int choice
        if not any(value == c and type(value) is type(c) for c in choices):
            raise choice_error(label, value, choices)
        return
    _check_type(value, hint, label)
    _check_range(value, _metadata(cls).get(name, {}), label)


@functools.lru_cache(maxsize=None)
def _metadata(cls: type) -> dict[str, Any]:
    return {f.name: dict(f.metadata) for f in dataclasses.fields(cls)}


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_type(value: Any, hint: Any, label: str) -> None:
    """Raise `SettingTypeError` unless ``value`` fits ``hint`` (only the hints settings use:
    int, float, bool, str, tuples, optionals of these; others pass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return
        errors = []
        for a in options:
            try:
                return _check_type(value, a, label)
            except ValueError as e:
                errors.append(str(e))
        if len(options) == 1:
            raise SettingTypeError(errors[0])
        raise SettingTypeError(f"{label}: {value!r} fits none of its types ({'; '.join(errors)})")
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise SettingTypeError(f"{label} must be a list of values, got {type(value).__name__} {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            inner = [args[0]] * len(value)
        elif args:
            if len(value) != len(args):
                raise ValueError(f"{label} must hold {len(args)} values, got {len(value)}: {value!r}")
            inner = list(args)
        else:
            return
        for k, (v, a) in enumerate(zip(value, inner)):
            _check_type(v, a, f"{label}[{k}]")
        return
    if hint is bool:
        ok, what = isinstance(value, bool), "true or false"
    elif hint is int:
        ok, what = _is_int(value), "an integer"
    elif hint is float:
        ok, what = _is_real(value), "a number"
    elif hint is str:
        ok, what = isinstance(value, str), "a string"
    else:
        return
    if not ok:
        got = f"the string {value!r}" if isinstance(value, str) else f"{type(value).__name__} {value!r}"
        fix = "; write it without quotes" if isinstance(value, str) else ""
        raise SettingTypeError(f"{label} must be {what}, got {got}{fix}")
    if hint is float and not math.isfinite(float(value)):
        raise ValueError(f"{label} must be a finite number, got {value!r}")


def _check_range(value: Any, meta: dict[str, Any], label: str) -> None:
    """Check a number (or each number of a tuple) against ``min``/``max``/``above`` in ``meta``."""
    if not any(k in meta for k in ("min", "max", "above")):
        return
    for v in (value if isinstance(value, (tuple, list)) else (value,)):
        if not _is_real(v):
            continue
        lo, hi, above = meta.get("min"), meta.get("max"), meta.get("above")
        if (lo is not None and v < lo) or (hi is not None and v > hi) or (above is not None and v <= above):
            parts = ([f"> {above}"] if above is not None else []) + ([f">= {lo}"] if lo is not None else []) \
                + ([f"<= {hi:,}" if _is_int(hi) else f"<= {hi}"] if hi is not None else [])
            why = f" ({meta['range_why']})" if meta.get("range_why") else ""
            raise ValueError(f"{label} must be {' and '.join(parts)}, got {v!r}{why}")


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
    types_ = field_types(cls)
    for name, value in values.items():
        if isinstance(value, str) and name in types_ and not _admits_str(types_[name]):
            raise SettingTypeError(
                f"{where or cls.__name__}.{name} holds the string {value!r} in the saved config, where "
                f"{_describe(types_[name])} belongs; write it without quotes (JSON null for none)")
    for name, before in dict(getattr(cls, "added", {}) or {}).items():
        values.setdefault(name, before)
    return values


def _admits_str(hint: Any) -> bool:
    """Whether a value of type ``hint`` may be a string (str, or a Literal with a string choice)."""
    if hint is str:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return any(isinstance(a, str) for a in args)
    if origin in (typing.Union, types.UnionType):
        return any(_admits_str(a) for a in args)
    return hint is Any


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint) if a is not type(None))
    return {int: "an integer", float: "a number", bool: "true or false"}.get(
        hint, f"a value of type {getattr(hint, '__name__', None) or str(hint).replace('typing.', '')}")


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
        if typ is int and _is_int(value) and type(value) is not int:
            return int(value)  # numpy integers (a parameter grid) become JSON-able Python ints
        if typ is float and _is_real(value) and type(value) not in (int, float):
            return float(value)
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


# -- the size of what a config builds -------------------------------------------------------------
_state = threading.local()  # the guard of the model being built in this thread, if any
_hooks_installed = False


def memory_available() -> int:
    """Bytes of memory this process can still take: the kernel's MemAvailable, capped by a cgroup
    (container) limit; ``GENLAB_MAX_MODEL_BYTES`` overrides both."""
    if os.environ.get("GENLAB_MAX_MODEL_BYTES"):
        return int(os.environ["GENLAB_MAX_MODEL_BYTES"])
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return 1 << 62  # unknown: do not refuse
    try:  # cgroup v2 (a container's limit)
        with open("/sys/fs/cgroup/memory.max") as f, open("/sys/fs/cgroup/memory.current") as g:
            cap, used = f.read().strip(), g.read().strip()
        avail = avail if cap == "max" else min(avail, int(cap) - int(used))
    except (OSError, ValueError):
        pass
    return max(avail, 0)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**27 else f"{n / 2**20:.1f} MiB"


def _on_register(module: Any, name: str, tensor: Any) -> None:
    guard = getattr(_state, "guard", None)
    if guard is None or tensor is None:
        return
    guard["sizes"][(id(module), name)] = tensor.numel() * tensor.element_size()
    total = sum(guard["sizes"].values())
    if total > guard["limit"]:
        raise ValueError(f"{guard['where']}: these settings build a model whose parameters and buffers "
                         f"take more than {_gib(total)} (the building was stopped there), more than the "
                         f"{_gib(guard['limit'])} of memory available; choose smaller sizes (fewer layers, "
                         f"narrower hidden layers)")


@contextlib.contextmanager
def construction_guard(where: str, limit_bytes: int | None = None) -> Iterator[None]:
    """Build a model inside this: a parameter or buffer that takes the model's total past
    ``limit_bytes`` (default `memory_available`) stops the building with a ValueError naming the
    size, before its weights are initialised (``nn.Linear`` registers its weight, then fills it),
    and an allocation or size error from the constructor becomes a ValueError that says which
    settings to change. Counts only what this thread builds."""
    global _hooks_installed
    if not _hooks_installed:  # global torch hooks, installed once; idle outside a guard
        from torch.nn.modules import module as _module
        _module.register_module_parameter_registration_hook(_on_register)
        _module.register_module_buffer_registration_hook(_on_register)
        _hooks_installed = True
    outer = getattr(_state, "guard", None)
    if outer is not None:  # a model built inside another's construction counts toward the outer one
        yield
        return
    _state.guard = {"where": where, "sizes": {},
                    "limit": memory_available() if limit_bytes is None else limit_bytes}
    try:
        yield
    except MemoryError:
        raise ValueError(f"{where}: these settings build a model too large for the memory available; "
                         "choose smaller sizes") from None
    except (RuntimeError, OverflowError, ZeroDivisionError) as e:
        if isinstance(e, NotImplementedError):  # NotSupported: a capability the data lacks, already clear
            raise
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "allocate" in text:  # torch's allocator: "... you tried to allocate N bytes ..."
            size = re.search(r"allocate (\d+) bytes", text)
            text = f"a tensor of {_gib(int(size.group(1)))} does not fit in memory" if size else text
        raise ValueError(f"{where}: these settings cannot build a model ({text}); check them against "
                         f"`genlab train {where} --help` and choose smaller sizes where one is large") from e
    finally:
        _state.guard = None
