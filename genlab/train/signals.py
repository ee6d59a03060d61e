"""Ctrl-C and SIGTERM between steps, not inside one.

A signal that lands inside a step (one objective updated, the next not; noise drawn, the counter
not yet advanced) cannot be checkpointed exactly. While the trainer runs, the first SIGINT or
SIGTERM is only noted; the trainer looks at it after each step, writes a checkpoint of the state
between two steps and stops, so `genlab resume` continues bit-exactly. A second signal stops at
once (KeyboardInterrupt), keeping the last checkpoint.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Deferred:
    """The signal received so far (``None``: none)."""

    def __init__(self) -> None:
        self.received: int | None = None

    def _handler(self, signum: int, frame: object) -> None:
        if self.received is not None:  # asked twice: the user does not want to wait for the step
            raise KeyboardInterrupt
        self.received = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""


@contextlib.contextmanager
def deferred_signals() -> Iterator[Deferred]:
    """Inside the block SIGINT and SIGTERM are noted in the yielded `Deferred` (only in the main
    thread, where Python delivers signals; elsewhere nothing changes)."""
    state = Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in before:
        signal.signal(s, state._handler)
    try:
        yield state
    finally:
        for s, h in before.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
