"""``genlab``: the command line, generated from the registry and the config dataclasses.

    genlab list
    genlab train FAMILY --data NAME|PATH [--epochs N] [--set key=value ...] [--out DIR]
    genlab resume RUN [--epochs N]
    genlab sample RUN -n N --out FILE.png|.npy|.csv
    genlab eval RUN [--data NAME|PATH] [--split test]
    genlab compare --data NAME|PATH [--families a,b,c] [--budget MINUTES] [--out DIR]
    genlab report RUN
    genlab outliers | impute | interpolate | translate | compress | decompress RUN ...

Commands by what they do: `train` (list, train, resume, sample), `evaluate` (eval, compare,
report), `tasks` (trained runs put to work); `parser` assembles them, `flags` turns config
dataclasses into flags.
"""
from __future__ import annotations

import sys
import textwrap

from .parser import build_parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``genlab`` command; returns the exit status (2 for a user error, with its message)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:  # `genlab ... | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: the last checkpoint is kept; continue with `genlab resume RUN`", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotImplementedError, RuntimeError) as e:
        print("genlab: error: " + textwrap.fill(str(e), 100, subsequent_indent="  "), file=sys.stderr)
        return 2


__all__ = ["build_parser", "main"]
