"""The small classifier whose features classifier-FID, precision/recall and density/coverage use.

genlab trains it on a data set's own labels (no downloaded Inception weights), through the one
`genlab.train.Trainer` (the classifier is a module with one cross-entropy `Objective`). Training
is seeded, so the same data always give the same classifier; `classifier_key` names it (a hash
of the examples, labels, spec, architecture and training settings), which lets a caller keep it
(`genlab.evaluate` caches it; nothing here writes a file). Features are the penultimate layer's
activations: (n, FEATURES).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..data.spec import DataSpec
from ..nn import MLP, ConvEncoder
from ..protocol import Batch, Loss, NotSupported, Objective, check_input
from ..train import TrainConfig, Trainer

# /2: trained by genlab's Trainer (its data order), so the weights differ from /1's for the same data
ARCH = "genlab-classifier/2"
FEATURES = 64


class FeatureClassifier(nn.Module):
    """Convolutional (images) or MLP (vectors) classifier with a FEATURES-wide penultimate layer.

    It offers what `genlab.train.Trainer` asks of a model (``name``, ``default_epochs``,
    ``default_train``, ``setup``, ``check_input``, ``objectives``, ``val_loss``); it is no
    generative family and is not registered.

    Args:
        spec: the data's spec (needs ``num_classes``); inputs are data-space examples, scaled
            to [-1, 1] for discrete data and standardized with stored statistics otherwise.
    """

    name: ClassVar[str] = "feature-classifier"
    default_epochs: ClassVar[int] = 20
    default_train: ClassVar[dict[str, Any]] = {}

    def __init__(self, spec: DataSpec):
        super().__init__()
        if not spec.num_classes or spec.num_classes < 2:
            raise NotSupported("classifier features need class labels (2 or more classes); this data set has "
                               "none, so classifier-FID cannot be computed")
        self.spec = spec
        if spec.is_image:
            self.body = ConvEncoder(spec.event_shape, FEATURES, channels=(32, 64), hidden=128)
        else:
            self.body = MLP(spec.dim, FEATURES, (128, 128))
        self.head = nn.Linear(FEATURES, spec.num_classes)
        self.register_buffer("shift", torch.zeros(spec.event_shape))
        self.register_buffer("scale", torch.ones(spec.event_shape))

    def _scaled(self, x: Tensor) -> Tensor:
        x = (x.to(self.shift.dtype) - self.shift) / self.scale
        return x if self.spec.is_image else x.reshape(len(x), -1)

    def features(self, x: Tensor) -> Tensor:
        """(batch, *event_shape) data space -> (batch, FEATURES)."""
        return nn.functional.silu(self.body(self._scaled(x)))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (batch, num_classes)."""
        return self.head(self.features(x))

    # -- what the Trainer uses -------------------------------------------------------------------
    def check_input(self, x: Tensor | np.ndarray) -> Tensor:
        """``x`` as a float tensor (batch, *event_shape) on the classifier's device, or ValueError."""
        return check_input(x, self.spec, like=self.shift)

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """Input scaling from the training examples ``x`` (data space): discrete levels map to
        [-1, 1]; continuous entries are standardized."""
        if self.spec.is_discrete:
            half = (self.spec.levels - 1) / 2
            self.shift.fill_(half)
            self.scale.fill_(half)
        else:
            self.shift.copy_(x.mean(0))
            self.scale.copy_(x.std(0).clamp_min(1e-6))

    def cross_entropy(self, batch: Batch) -> Loss:
        """Mean cross-entropy of the batch's labels (nats), with the batch accuracy logged."""
        if batch.y is None:
            raise ValueError("the feature classifier trains on labelled examples: pass y")
        logits = self(batch.x)
        y = batch.y.long()
        return Loss(nn.functional.cross_entropy(logits, y),
                    logs={"accuracy": float((logits.argmax(1) == y).float().mean())})

    def objectives(self) -> list[Objective]:
        """One objective: cross-entropy over every parameter."""
        return [Objective("cross_entropy", list(self.parameters()), self.cross_entropy)]

    @torch.no_grad()
    def val_loss(self, x: Tensor, y: Tensor | None = None) -> float | None:
        """Mean cross-entropy on labelled ``x`` (None without labels)."""
        return None if y is None else float(nn.functional.cross_entropy(self(x), y.long()))


def classifier_key(x: Tensor, y: Tensor, spec: DataSpec, *, seed: int = 0, steps: int = 1500) -> str:
    """SHA-256 of the examples, labels, spec, architecture and training settings: the name of the
    classifier that `fit_classifier` trains from them (what a cache keys it by)."""
    h = hashlib.sha256(f"{ARCH}seed={seed},steps={steps}".encode())
    h.update(json.dumps(spec.to_dict(), sort_keys=True).encode())
    h.update(x.detach().cpu().float().contiguous().numpy().tobytes())
    h.update(y.detach().cpu().long().contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def accuracy(clf: FeatureClassifier, x: Tensor, y: Tensor, batch_size: int = 1024) -> float:
    """Share of ``x`` that ``clf`` labels ``y``."""
    clf.eval()
    hits = sum(int((clf(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
               for i in range(0, len(x), batch_size))
    return hits / len(x)


def train_classifier(x: Tensor, y: Tensor, spec: DataSpec, *, seed: int = 0, steps: int = 1500,
                     batch_size: int = 128, lr: float = 1e-3) -> FeatureClassifier:
    """Train a `FeatureClassifier` on the CPU with `genlab.train.Trainer` (Adam, cross-entropy, no
    clipping, no early stopping) for about ``steps`` steps (whole epochs, 2..20), seeded by
    ``seed``; the global RNG is left untouched and no file is written."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clf = FeatureClassifier(spec)
    epochs = min(20, max(2, math.ceil(steps / max(1, math.ceil(len(x) / batch_size)))))
    # the CPU whatever the machine: the same data then give the same classifier everywhere
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, grad_clip=None, patience=None, seed=seed,
                      device="cpu", progress=False)
    return Trainer(clf, cfg).fit(x, y)


def fit_classifier(x: Tensor, y: Tensor | None, spec: DataSpec, *, name: str = "data",
                   x_val: Tensor | None = None, y_val: Tensor | None = None, seed: int = 0,
                   steps: int = 1500) -> tuple[FeatureClassifier, dict[str, Any]]:
    """Train the data set's feature classifier and describe it.

    Args:
        x: (n, *event_shape) training examples in data space; y: (n,) their labels.
        spec: the data's spec; name: the data set's name (recorded in the description).
        x_val, y_val: held-out examples for the accuracy recorded with the classifier.
        seed, steps: see `train_classifier`.
    Returns:
        (classifier in eval mode, info: arch, hash (`classifier_key`), data, n_train, seed, steps,
        features, train_accuracy, val_accuracy, n_val, seconds).
    Raises:
        NotSupported: ``y`` is None or the spec has fewer than 2 classes.
    """
    if y is None:
        raise NotSupported(f"{name} has no class labels, so genlab cannot train the classifier whose "
                           "features classifier-FID uses; sample metrics fall back to raw examples")
    x, y = x.detach().cpu().float(), y.detach().cpu().long()
    key = classifier_key(x, y, spec, seed=seed, steps=steps)
    t0 = time.perf_counter()
    clf = train_classifier(x, y, spec, seed=seed, steps=steps)
    val = x_val is not None and y_val is not None
    info = {"arch": ARCH, "hash": key, "data": name, "n_train": len(x), "seed": seed, "steps": steps,
            "features": FEATURES, "train_accuracy": accuracy(clf, x, y),
            "val_accuracy": accuracy(clf, x_val.cpu().float(), y_val.cpu().long()) if val else None,
            "n_val": None if x_val is None else len(x_val), "seconds": time.perf_counter() - t0}
    return clf, info


@torch.no_grad()
def classifier_features(clf: FeatureClassifier, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Penultimate-layer features (n, FEATURES) of data-space examples ``x: (n, *event_shape)``."""
    clf.eval()
    x = x.detach().cpu().float().reshape(len(x), *clf.spec.event_shape)
    return torch.cat([clf.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def conditional_accuracy(clf: FeatureClassifier, x: Tensor, labels: Tensor) -> dict[str, Any]:
    """Share of ``x`` (samples drawn for ``labels``) that ``clf`` labels so, with its standard
    error; the classifier's held-out accuracy is its ceiling."""
    hits = (clf(x.detach().cpu().float()).argmax(1) == labels.cpu()).double()
    return {"value": float(hits.mean()), "stderr": float(hits.std() / math.sqrt(len(x))), "n": len(x),
            "floor_is": "the classifier's held-out accuracy"}
