"""`DataSpec`: what one example looks like, so that a model can be built for it.

Every model is built from a `DataSpec` and a config; the spec decides the network (MLP for
vectors, convolutional for images), the likelihood (Gaussian, Bernoulli, discretized logistic)
and the preprocessing (standardization, dequantization).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Kind(str, Enum):
    """The value type of each entry of an example."""

    CONTINUOUS = "continuous"  # real numbers
    DISCRETE = "discrete"  # ordered integers 0 .. levels-1 (e.g. grey levels)
    BINARY = "binary"  # 0 / 1
    CATEGORICAL = "categorical"  # unordered integers 0 .. levels-1
    TEXT = "text"  # token ids 0 .. levels-1 (levels = vocabulary size)


@dataclass(frozen=True)
class DataSpec:
    """The shape and value type of one example.

    Args:
        event_shape: shape of one example, e.g. ``(2,)`` for 2-D points or ``(1, 8, 8)`` for
            8x8 grey images (channels first).
        kind: value type of the entries (see `Kind`).
        levels: number of values per entry for discrete / binary / categorical / text data
            (2 for binary); ``None`` for continuous data.
        num_classes: number of class labels if the data set is labelled, else ``None``.
        vocab: for text, the characters whose index is the token id.
        feature_names: optional names of the entries of a vector example (tabular data).
        cardinalities: optional number of values of each entry (tabular categorical data whose
            columns differ); each is in ``2 .. levels`` and ``levels`` is their maximum.
        domains: for an unpaired multi-domain data set (``load_dataset("digits+mnist5k")``), the
            name of each domain; an example's label is the index of its domain, so
            ``num_classes == len(domains)``. ``None`` for data of one domain.
    """

    event_shape: tuple[int, ...]
    kind: Kind = Kind.CONTINUOUS
    levels: int | None = None
    num_classes: int | None = None
    vocab: str | None = None
    feature_names: tuple[str, ...] | None = field(default=None, compare=False)
    cardinalities: tuple[int, ...] | None = None
    domains: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_shape", tuple(int(s) for s in self.event_shape))
        object.__setattr__(self, "kind", Kind(self.kind))
        if self.feature_names is not None:
            object.__setattr__(self, "feature_names", tuple(self.feature_names))
        if not self.event_shape or any(s <= 0 for s in self.event_shape):
            raise ValueError(f"DataSpec: event_shape must be non-empty and positive, got {self.event_shape}")
        if self.kind is Kind.BINARY:
            object.__setattr__(self, "levels", 2)
        if self.kind is not Kind.CONTINUOUS and (self.levels is None or self.levels < 2):
            raise ValueError(f"DataSpec: kind={self.kind.value} needs levels >= 2, got {self.levels}")
        if self.kind is Kind.CONTINUOUS and self.levels is not None:
            raise ValueError("DataSpec: continuous data has no levels; use kind='discrete' for quantized data")
        if self.cardinalities is not None:
            c = tuple(int(k) for k in self.cardinalities)
            object.__setattr__(self, "cardinalities", c)
            if len(c) != self.dim or min(c) < 2 or max(c) != self.levels:
                raise ValueError(f"DataSpec: cardinalities must give one value >= 2 per entry ({self.dim}) "
                                 f"with maximum levels={self.levels}, got {c}")
        if self.domains is not None:
            object.__setattr__(self, "domains", tuple(str(d) for d in self.domains))
            if len(self.domains) < 2 or self.num_classes != len(self.domains):
                raise ValueError(f"DataSpec: domains must name two or more domains, one per label "
                                 f"(num_classes={self.num_classes}), got {self.domains}")

    @property
    def dim(self) -> int:
        """Number of entries per example (the D of bits/dim)."""
        n = 1
        for s in self.event_shape:
            n *= s
        return n

    @property
    def is_image(self) -> bool:
        """True for (channels, height, width) examples."""
        return len(self.event_shape) == 3

    @property
    def is_discrete(self) -> bool:
        """True for every kind but continuous (the entries are integer levels or categories)."""
        return self.kind is not Kind.CONTINUOUS

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON data (what a run's ``config.json`` holds); `from_dict` reads it back."""
        d = asdict(self)
        d["kind"] = self.kind.value
        d["event_shape"] = list(self.event_shape)
        if self.feature_names is not None:
            d["feature_names"] = list(self.feature_names)
        if self.cardinalities is not None:
            d["cardinalities"] = list(self.cardinalities)
        else:
            del d["cardinalities"]  # older readers (and saved runs) need not know the field
        if self.domains is not None:
            d["domains"] = list(self.domains)
        else:
            del d["domains"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataSpec":
        """The spec `to_dict` wrote. Raises ValueError for a field this version does not know."""
        known = {"event_shape", "kind", "levels", "num_classes", "vocab", "feature_names", "cardinalities",
                 "domains"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"DataSpec: unknown fields {sorted(unknown)} in saved spec")
        return cls(**d)
