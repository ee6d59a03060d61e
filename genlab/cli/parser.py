"""The ``genlab`` argument parser, assembled from the command groups: each group adds its
sub-commands and names the handler of each (``handler`` in the parsed arguments)."""
from __future__ import annotations

import argparse

from . import evaluate, tasks, train

GROUPS = (train, evaluate, tasks)  # the order of the commands in ``genlab --help``


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``genlab`` command, generated from the registry and the config dataclasses."""
    p = argparse.ArgumentParser(prog="genlab", description="Train, sample, score and evaluate generative models "
                                "of every family through one interface.", epilog=train.EPILOG)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    return p
