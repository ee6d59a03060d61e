"""Command-line flags generated from a settings dataclass: one flag per field, its type, choices
and help read from the field's type hint and ``metadata["help"]``; values are parsed and checked
by `genlab.settings` (the one place that does), so a flag accepts what the dataclass accepts.

A field ``max_minutes: float | None`` becomes ``--max-minutes MAX_MINUTES`` (``none`` accepted);
``amp: Literal["off", "bf16"]`` becomes ``--amp {off,bf16}``; a ``bool`` becomes the pair
``--compile / --no-compile``; a renamed setting (``renamed = {"old": "new"}`` on the dataclass)
keeps its old flag as a second name. Nothing here names a field.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable, Iterable, Mapping

from .. import settings


def _parser(hint: Any, where: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return settings.coerce(text, hint, where)
        except ValueError as e:  # argparse shows this message, not a generic "invalid value"
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def field_default(field: dataclasses.Field) -> Any:
    """A field's default value (from ``default`` or ``default_factory``)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return None


def _flag(name: str, prefix: Mapping[str, str]) -> str:
    return "--" + prefix.get(name, "") + name.replace("_", "-")


def _dest(name: str, prefix: Mapping[str, str]) -> str:
    return (prefix.get(name, "") + name).replace("-", "_")


# some Python versions append "(default: ...)" to a bool pair's help themselves
_BOOL_ADDS_DEFAULT = argparse.BooleanOptionalAction(["--x"], "x", default=True, help="h").help != "h"


def _help(field: dataclasses.Field, default: Any, show_default: bool = True) -> str:
    text = str(field.metadata.get("help", field.name)).replace("%", "%%")  # argparse formats help with %
    return text + (f" (default: {'none' if default is None else default})" if show_default else "")


def add_dataclass_flags(group: argparse._ActionsContainer, cls: type, *, skip: Iterable[str] = (),
                        prefix: Mapping[str, str] | None = None, defaults: Mapping[str, Any] | None = None,
                        unset: bool = False) -> None:
    """Add one flag per field of the settings dataclass ``cls`` to ``group``.

    Args:
        group: a parser or an argument group.
        cls: the settings dataclass.
        skip: fields without a flag.
        prefix: field name -> flag prefix, for a field whose plain name would read as another option
            of the same command (the evaluation's ``n`` beside the data's ``--n``: ``--eval-n``).
        defaults: the defaults the help shows, where they are not the fields' own (a family's
            trainer preferences).
        unset: leave an absent flag out of the parsed arguments, so that only the flags given
            override other defaults (``--grad-clip none`` is given: it sets None); otherwise an
            absent flag parses as the field's default.
    """
    prefix, defaults, skip = prefix or {}, defaults or {}, set(skip)
    types = settings.field_types(cls)
    old_names: dict[str, list[str]] = {}
    for old, new in settings.renamed_keys(cls).items():
        old_names.setdefault(new, []).append(old)
    for f in dataclasses.fields(cls):
        if f.name in skip or f.name not in types:
            continue
        flags = [_flag(f.name, prefix)] + [_flag(old, prefix) for old in old_names.get(f.name, [])]
        hint, dest = types[f.name], _dest(f.name, prefix)
        shown = defaults.get(f.name, field_default(f))
        kw: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS if unset else field_default(f),
                              "help": _help(f, shown, unset or hint is not bool or not _BOOL_ADDS_DEFAULT)}
        choices, optional = settings.choices_of(hint)
        if hint is bool:
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, **kw)
            continue
        if choices is not None:
            kw["metavar"] = "{" + ",".join(map(str, choices + (("none",) if optional else ()))) + "}"
        else:
            kw["metavar"] = dest.upper()
        group.add_argument(*flags, type=_parser(hint, flags[0]), **kw)


def dataclass_values(args: argparse.Namespace, cls: type, *, skip: Iterable[str] = (),
                     prefix: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Field name -> value, for the flags of ``cls`` that `add_dataclass_flags` (same ``skip`` and
    ``prefix``) added and ``args`` holds: every one, or with ``unset`` only those given."""
    skip, prefix = set(skip), prefix or {}
    return {f.name: getattr(args, _dest(f.name, prefix)) for f in dataclasses.fields(cls)
            if f.name not in skip and hasattr(args, _dest(f.name, prefix))}
