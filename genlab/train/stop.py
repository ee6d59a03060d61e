"""Why training stopped, and whether ``genlab resume`` may continue it."""
from __future__ import annotations

from enum import Enum


class StopReason(str, Enum):
    """Why a run stopped. Its value is what ``trainer.json`` records."""

    EPOCHS = "epochs"  # all the epochs asked for ran
    CONVERGED = "converged"  # a closed-form / EM objective reported it was done
    EARLY_STOPPING = "early stopping"  # `patience` epochs without a better validation loss
    TIME_BUDGET = "time budget"  # `max_minutes` ran out
    INTERRUPTED = "interrupted"  # Ctrl-C (a checkpoint was written)
    REQUESTED = "requested"  # a callback called `Trainer.stop`

    @property
    def resumable(self) -> bool:
        """Whether a resume continues training (the budget, an interruption or the epoch count cut
        it short) rather than only reloading a finished run. More epochs resume an EPOCHS stop."""
        return self in (StopReason.TIME_BUDGET, StopReason.INTERRUPTED, StopReason.EPOCHS)

    @classmethod
    def from_saved(cls, state: dict) -> "StopReason | None":
        """The reason recorded in a ``trainer.json`` state; files written before the enum
        recorded only the text (``"time budget"``, ``"30 epochs"``, ...), read by its words."""
        if state.get("stop") is not None:
            return cls(state["stop"])
        text = state.get("stop_reason") or ""
        if not text:
            return None
        if text.endswith(" epochs"):
            return cls.EPOCHS
        for reason in cls:
            if text.startswith(reason.value):
                return reason
        return cls.REQUESTED
