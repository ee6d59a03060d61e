"""The ``genlab`` argument parser, assembled from the command groups: each group adds its
sub-commands and names the handler of each (``handler`` in the parsed arguments).

A group is imported only when one of its commands runs: the groups import torch and the
registry (seconds), which ``genlab --help``, ``--version`` and ``metrics`` do not need. The
other commands appear in the parser by name and one-line help only (`COMMANDS`), enough for the
top-level help and for argparse's "invalid choice" message.
"""
from __future__ import annotations

import argparse
import importlib
from typing import NamedTuple

from ..version import __version__

EPILOG = ("Run `genlab COMMAND --help` for each command's options; `genlab train FAMILY --help` lists "
          "a family's settings.")


class Command(NamedTuple):
    """A sub-command: the module of its group (under genlab.cli) and its one-line help."""

    group: str
    help: str


# in the order of `genlab --help`
COMMANDS: dict[str, Command] = {
    "list": Command("listing", "families with their capabilities; data sets"),
    "train": Command("train", "train a family on a data set into a run directory"),
    "resume": Command("train", "continue a run from its last checkpoint"),
    "sample": Command("sample", "draw samples from a trained run (text models write text)"),
    "eval": Command("evaluate", "every metric a run's family supports, with standard errors"),
    "metrics": Command("metrics", "the metrics `genlab eval` reports: names, units, meanings"),
    "compare": Command("evaluate", "the textbook's table of families, measured: train, evaluate, report"),
    "report": Command("evaluate", "write a run's own report.html"),
    "outliers": Command("tasks", "score examples as outliers under a trained run"),
    "impute": Command("tasks", "fill missing entries with draws from p(missing | observed)"),
    "interpolate": Command("tasks", "decode paths between encoded examples; attribute vectors"),
    "translate": Command("tasks", "apply a trained translator to images"),
    "compress": Command("tasks", "compress discrete data losslessly with a trained run"),
    "decompress": Command("tasks", "restore data compressed by `genlab compress`"),
}


def command_of(argv: list[str]) -> str:
    """The sub-command named in ``argv`` (the first word that is not an option), or ``""``."""
    return next((a for a in argv if not a.startswith("-")), "")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``genlab``.

    Args:
        command: None builds every command in full (slow: imports torch and every family);
            a command's name builds its group in full and the others by name only; ``""`` builds
            every command by name only (``genlab --help``, ``--version``, an unknown command).
    """
    p = argparse.ArgumentParser(prog="genlab", description="Train, sample, score and evaluate generative models "
                                "of every family through one interface.", epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"genlab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    full = {c.group for c in COMMANDS.values()} if command is None else \
        {COMMANDS[command].group} if command in COMMANDS else set()
    added: set[str] = set()
    for name, cmd in COMMANDS.items():
        if cmd.group in full:
            if cmd.group not in added:
                added.add(cmd.group)
                importlib.import_module(f"genlab.cli.{cmd.group}").add_commands(sub)
        else:
            sub.add_parser(name, help=cmd.help, add_help=False)
    return p
