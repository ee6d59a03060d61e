"""`TrainConfig`: the trainer's settings, and which of them the user set.

A family may prefer other trainer settings than the general defaults (``default_train``, a
ClassVar dict on the family, and ``default_epochs``). The `Trainer` fills those preferences in
itself (`TrainConfig.for_family`), so ``Trainer(model, TrainConfig(...))`` trains a family the way
``genlab train`` does, and a setting the user gave always wins over the family's preference.

"Given" is tracked, not guessed from the value: a field counts as set when it is passed to the
constructor or assigned afterwards, even to the general default's value (``lr=1e-3`` for a
family that prefers 1e-2 keeps 1e-3). ``dataclasses.replace`` passes every field to the
constructor, so its result counts every field as set; derive a config with `TrainConfig.with_`
to keep only the changed fields and the original's given ones.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import settings


@dataclass
class TrainConfig:
    """Settings of the trainer (the model's own hyperparameters are in its Config)."""

    epochs: int | None = field(default=None, metadata={"min": 1,
        "help": "passes over the training data (default: the family's default_epochs)"})
    batch_size: int = field(default=256, metadata={"min": 1, "help": "examples per step (per process under torchrun)"})
    lr: float = field(default=1e-3, metadata={"above": 0, "help": "Adam learning rate (an objective may set its own)"})
    lr_schedule: Literal["constant", "cosine"] = field(default="constant", metadata={
        "help": "learning-rate schedule: constant, or cosine (decays to 0 over all steps)"})
    weight_decay: float = field(default=0.0, metadata={"min": 0, "help": "AdamW weight decay (0: plain Adam)"})
    grad_clip: float | None = field(default=10.0, metadata={"min": 0, "range_why": "0 or none: no clipping",
        "help": "largest gradient norm of each objective; larger ones are scaled down (0 or none: no clipping)"})
    ema: float | None = field(default=None, metadata={"min": 0, "max": 1,
        "help": "decay of the moving average of weights used for validation and the saved model, "
                "e.g. 0.999 (none: off)"})
    patience: int | None = field(default=10, metadata={"min": 1,
        "help": "stop after this many epochs without a better validation loss (none: never stop early)"})
    checkpoint_every: int = field(default=500, metadata={"min": 1, "help": "steps between checkpoints (one is also written every epoch)"})
    log_every: int = field(default=10, metadata={"min": 1, "help": "steps between records in metrics.jsonl"})
    seed: int = field(default=0, metadata={"help": "seed of the initial weights, the data order and every random draw"})
    device: str = field(default="auto", metadata={
        "help": "where to train: auto (CUDA when available), cpu, cuda or cuda:N"})
    max_minutes: float | None = field(default=None, metadata={"min": 0,
        "help": "wall-clock budget in minutes; training stops with a checkpoint when it runs out (none: no budget)"})
    progress: bool = field(default=True, metadata={"help": "show progress: a bar on a terminal, a line every 10 s otherwise"})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile each gradient objective's loss (forward + backward): faster steps "
                "after a first compilation that takes minutes on CPU (measured: bench/README.md, Speed)"})
    amp: Literal["off", "bf16", "fp16"] = field(default="off", metadata={
        "help": "automatic mixed precision: off, bf16 or fp16 (fp16 adds loss scaling; CUDA only). bf16 also "
                "runs on CPUs with native bf16 matmuls (AVX512-BF16 / AMX), ignored with a warning elsewhere"})
    workers: int = field(default=0, metadata={"min": 0,
        "help": "DataLoader worker processes that read a streamed data set (0: read in the training process); "
                "in-memory tensors never use them"})
    threads: int | None = field(default=None, metadata={"min": 1,
        "help": "torch threads while fit runs (none: torch's default, one per core); 1 suits small models on "
                "few cores, where a second thread costs more in synchronisation than it computes"})
    tensorboard: bool = field(default=False, metadata={
        "help": "also write metrics.jsonl's records as TensorBoard scalars under RUN/tensorboard/ (view with "
                "`tensorboard --logdir RUN`); needs `pip install \"genlab[tensorboard]\"`"})

    def __post_init__(self) -> None:
        settings.validate(self)

    def __setattr__(self, name: str, value: Any) -> None:
        given = self.__dict__.get("_given")
        if given is not None and name in _FIELDS:  # None while the constructor runs
            settings.check_value(TrainConfig, name, value)
            given.add(name)
        object.__setattr__(self, name, value)

    @property
    def given(self) -> frozenset[str]:
        """Names of the fields the user set (to the constructor or by assignment)."""
        return frozenset(self.__dict__.get("_given") or ())

    def with_(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied; the copy's given fields are this one's plus ``changes``."""
        out = TrainConfig(**{**{k: getattr(self, k) for k in self.given}, **changes})
        for k in _FIELDS - out.given:  # fields neither given nor changed keep their values, still not given
            object.__setattr__(out, k, getattr(self, k))
        return out

    def for_family(self, family: type) -> "TrainConfig":
        """The settings the trainer uses for ``family``: every field the user did not set takes the
        family's preference (``family.default_train``; ``epochs`` from ``family.default_epochs``).
        The result counts every field as given (it is what a checkpoint records and a resume reuses).

        Raises:
            ValueError: a ``default_train`` key that is not a trainer setting, or a bad value.
        """
        values = dataclasses.asdict(self)
        values.update({k: v for k, v in getattr(family, "default_train", {}).items() if k not in self.given})
        if values["epochs"] is None:
            values["epochs"] = getattr(family, "default_epochs", None)
        return settings.build(TrainConfig, values, where=f"{getattr(family, 'name', family.__name__)}.default_train")


_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
_dataclass_init = TrainConfig.__init__


def _init_tracking_given(self: TrainConfig, *args: Any, **kwargs: Any) -> None:
    # the generated __init__ cannot tell a passed value from a default: record the names passed
    object.__setattr__(self, "_given", None)
    _dataclass_init(self, *args, **kwargs)
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    object.__setattr__(self, "_given", set(names[:len(args)]) | set(kwargs))


_init_tracking_given.__signature__ = inspect.signature(_dataclass_init)  # type: ignore[attr-defined]
_init_tracking_given.__doc__ = _dataclass_init.__doc__
TrainConfig.__init__ = _init_tracking_given  # type: ignore[method-assign]
