"""``genlab``: the command line, generated from the registry and the config dataclasses.

    genlab list | metrics | --version
    genlab train FAMILY --data NAME|PATH [--epochs N] [--set key=value ...] [--out DIR] [--config FILE]
    genlab resume RUN [--epochs N]
    genlab sample RUN -n N --out FILE.png|.npy|.csv|.txt
    genlab eval RUN [--data NAME|PATH] [--split test] [--metrics nll,fid]
    genlab compare --data NAME|PATH [--families a,b,c] [--budget MINUTES] [--out DIR]
    genlab report RUN
    genlab outliers | impute | interpolate | translate | compress | decompress RUN ...

Commands by what they do: `listing` (list), `train` (train, resume), `sample`, `evaluate` (eval, compare,
report), `metrics` (what eval reports), `tasks` (trained runs put to work); `parser` assembles
them and imports only the group of the command that runs, `flags` turns config dataclasses into
flags, `common` holds the flags and messages every computing command shares.
"""
from __future__ import annotations

import sys
import textwrap
import time

from .parser import build_parser, command_of


def _error(text: str) -> int:
    print("genlab: error: " + textwrap.fill(text, 100, subsequent_indent="  "), file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run one ``genlab`` command; returns the exit status (2 for a user error, with its message)."""
    started = time.monotonic()  # a --max-minutes budget counts from here: the imports below are in it
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    command = command_of(argv)
    try:
        if command == "train":  # `genlab train --config FILE`: the family may come from the file
            from .runconfig import family_from_config
            argv = family_from_config(argv)
        args = build_parser(command).parse_args(argv)
        args.started = started
        status = args.handler(args)
        dist = sys.modules.get("torch.distributed")  # loaded only by commands that may run under torchrun
        if status == 0 and dist is not None and dist.is_available() and dist.is_initialized():
            from ..train.distributed import shutdown
            shutdown()  # every rank done: end the job's process group before the interpreter's teardown
        return status
    except BrokenPipeError:  # `genlab ... | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: the last checkpoint is kept; continue with `genlab resume RUN`", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotImplementedError, RuntimeError) as e:
        return _error(str(e))
    except OSError as e:  # a read-only folder, a full disk: what could not be written, in one line
        where = f" {e.filename}" if e.filename else ""
        fix = ("; choose an --out in a folder you can write, or copy the run to one"
               if isinstance(e, PermissionError) or e.errno == 30 else "")  # 30: EROFS
        return _error(f"cannot write or read{where}: {e.strerror or e}{fix}")


__all__ = ["build_parser", "main"]
