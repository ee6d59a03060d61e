"""Progress a user can see: a bar on a terminal, a line every few seconds anywhere else (a log
file, a CI job, ``nohup``), and a time left that comes from the budget when one is set.

`Progress` has tqdm's interface (``update``, ``set_postfix``, ``close``), so a loop's bar becomes
one by changing its constructor. With a budget (``budget_s``) the bar's total is the step at which
the budget runs out at the rate so far (or the step count, whichever comes first), so its ETA is
the budget's, not the epoch count's. `Heartbeat` reports a command that has no steps to count
(evaluation, imputation, compression, the figures after training) from a background thread; it
keeps quiet while a `Progress` is showing.

Lines off a terminal come every `every_seconds` seconds: 10, or ``$GENLAB_PROGRESS_EVERY``.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
from typing import Any, Callable, TextIO

EVERY_ENV = "GENLAB_PROGRESS_EVERY"
DEFAULT_EVERY = 10.0

_active = 0  # Progress displays now showing (a Heartbeat stays quiet while one is)
_lock = threading.Lock()


def every_seconds() -> float:
    """Seconds between progress lines off a terminal: ``$GENLAB_PROGRESS_EVERY`` or 10."""
    text = os.environ.get(EVERY_ENV, "")
    try:
        value = float(text) if text.strip() else DEFAULT_EVERY
    except ValueError:
        raise ValueError(f"${EVERY_ENV}={text!r}: expected a number of seconds, e.g. 10") from None
    if not value >= 0 or not math.isfinite(value):
        raise ValueError(f"${EVERY_ENV}={text!r}: expected a number of seconds >= 0, e.g. 10")
    return value


def clock(seconds: float) -> str:
    """``75`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``."""
    s = max(0, int(round(seconds)))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def time_left(done: float, total: float | None, elapsed: float, budget_s: float | None) -> tuple[float | None, str]:
    """Seconds left and where the figure comes from (``"steps"`` or ``"budget"``): the steps left
    at the rate so far, capped by what the budget leaves. ``(None, "")`` when neither is known."""
    by_steps = elapsed / done * (total - done) if done > 0 and total else None
    by_budget = max(0.0, budget_s - elapsed) if budget_s is not None else None
    if by_budget is not None and (by_steps is None or by_budget <= by_steps):
        return by_budget, "budget"
    return by_steps, ("steps" if by_steps is not None else "")


def _is_tty(file: TextIO) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


class Progress:
    """A step counter shown as a bar on a terminal and as a line every `every_seconds` otherwise.

    Args:
        total: steps in all (None: unknown).
        initial: steps already done (a resumed run).
        desc: what is counted (``"realnvp"``).
        unit: the name of a step.
        budget_s: the time budget in seconds (None: none); the ETA never runs past it.
        enabled: False shows nothing.
        file: where to write (default: standard error).
        every: seconds between lines off a terminal (default `every_seconds`).
        timer: the clock (seconds); tests pass their own.
    """

    def __init__(self, total: int | None = None, *, initial: int = 0, desc: str = "", unit: str = "step",
                 budget_s: float | None = None, enabled: bool = True, file: TextIO | None = None,
                 every: float | None = None, timer: Callable[[], float] = time.monotonic, **_tqdm: Any):
        self.file = file if file is not None else sys.stderr
        self.total, self.n, self.start = total, initial, initial
        self.desc, self.unit, self.budget_s = desc, unit, budget_s
        self.every = every_seconds() if every is None else every
        self.timer = timer
        self.t0 = self.last = timer()
        self.postfix: dict[str, Any] = {}
        self.enabled, self.closed = enabled, False
        self.bar = None
        if enabled and _is_tty(self.file):
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.file)
        if enabled:
            _count(+1)

    def projected_total(self) -> int | None:
        """The step at which training ends: ``total``, or sooner the step the budget reaches at the
        rate so far."""
        elapsed, done = self.timer() - self.t0, self.n - self.start
        if self.budget_s is None or done <= 0 or elapsed <= 0:
            return self.total
        at_budget = self.n + math.ceil(done / elapsed * max(0.0, self.budget_s - elapsed))
        return at_budget if self.total is None else min(self.total, at_budget)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps; print a line when `every` seconds have passed since the last."""
        self.n += n
        if not self.enabled or self.closed:
            return
        if self.bar is not None:
            if self.budget_s is not None:
                self.bar.total = self.projected_total()
            self.bar.update(n)
            return
        now = self.timer()
        if now - self.last >= self.every:
            self.last = now
            print(self.line(), file=self.file, flush=True)

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kw: Any) -> None:
        """Figures shown after the count (losses, examples/s), as tqdm's ``set_postfix``."""
        self.postfix = {**(ordered_dict or {}), **kw}
        if self.bar is not None:
            self.bar.set_postfix(self.postfix, refresh=refresh)

    def line(self) -> str:
        """The line printed off a terminal: count, share, elapsed time, time left and its source."""
        elapsed = self.timer() - self.t0
        total = self.projected_total()
        count = f"{self.unit} {self.n}" + (f"/{total}" if total else "")
        if total:
            count += f" ({100 * min(1.0, self.n / total):.0f}%)"
        left, source = time_left(self.n - self.start, None if total is None else total - self.start, elapsed,
                                 self.budget_s)
        eta = "" if left is None else f", ETA {clock(left)}" + (" (budget)" if source == "budget" else "")
        extra = "".join(f" {k}={v}" for k, v in self.postfix.items())
        return f"{self.desc}: {count}, {clock(elapsed)} elapsed{eta}{extra}"

    def close(self) -> None:
        """Close the bar (a no-op the second time)."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        if self.enabled:
            _count(-1)

    def __del__(self) -> None:  # a display dropped without close() must not silence heartbeats
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to report to
            pass

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _count(delta: int) -> None:
    global _active
    with _lock:
        _active += delta


def showing() -> bool:
    """Whether a `Progress` display is showing now."""
    return _active > 0


class Heartbeat:
    """A line every `every` seconds while a command runs: what it does now, the time elapsed and,
    with a budget, the time left. Quiet while a `Progress` shows; use it as a context manager.

    Args:
        desc: the command (``"genlab eval"``).
        budget_s: the command's budget in seconds, for the time left (None: none).
        enabled: False prints nothing.
        file: where to write (default: standard error).
        every: seconds between lines (default `every_seconds`; 0: none).
    """

    def __init__(self, desc: str, *, budget_s: float | None = None, enabled: bool = True,
                 file: TextIO | None = None, every: float | None = None):
        self.desc, self.budget_s = desc, budget_s
        self.file = file if file is not None else sys.stderr
        self.every = every_seconds() if every is None else every
        self.enabled = enabled and self.every > 0
        self.what = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = time.monotonic()

    def status(self, text: str) -> None:
        """Say what the command does now (shown in the next line)."""
        self.what = text

    def line(self) -> str:
        """The line it prints: command, status, elapsed time, time left from the budget."""
        elapsed = time.monotonic() - self.t0
        left = "" if self.budget_s is None else f", ETA {clock(self.budget_s - elapsed)} (budget)" \
            if elapsed <= self.budget_s else f", {clock(elapsed - self.budget_s)} past the budget"
        what = f" {self.what}," if self.what else ""
        return f"{self.desc}:{what} {clock(elapsed)} elapsed{left}"

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if not showing():
                try:
                    print(self.line(), file=self.file, flush=True)
                except (ValueError, OSError):  # the stream went away (a closed pipe): stop reporting
                    return

    def __enter__(self) -> "Heartbeat":
        self.t0 = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="genlab-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
