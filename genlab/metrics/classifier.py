"""The small classifier whose features classifier-FID, precision/recall and density/coverage use.

genlab trains it on a data set's own labels (no downloaded Inception weights) and keeps one per
data set, keyed by a hash of the training examples, labels and architecture, under
``$GENLAB_CACHE/classifiers/<dataset>-<hash>.safetensors`` + ``.json`` (default cache
``~/.cache/genlab``). Training is seeded, so the same data always give the same classifier.
Features are the penultimate layer's activations: (n, FEATURES).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from .. import io
from ..data.spec import DataSpec
from ..nn import MLP, ConvEncoder
from ..protocol import NotSupported

ARCH = "genlab-classifier/1"
FEATURES = 64
CACHE_ENV = "GENLAB_CACHE"


def cache_dir() -> Path:
    """``$GENLAB_CACHE`` or ``~/.cache/genlab``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "genlab")


class FeatureClassifier(nn.Module):
    """Convolutional (images) or MLP (vectors) classifier with a FEATURES-wide penultimate layer.

    Args:
        spec: the data's spec (needs ``num_classes``); inputs are data-space examples, scaled
            to [-1, 1] for discrete data and standardized with stored statistics otherwise.
    """

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


def _fit_scaling(clf: FeatureClassifier, x: Tensor) -> None:
    spec = clf.spec
    if spec.is_discrete:
        half = (spec.levels - 1) / 2
        clf.shift.fill_(half)
        clf.scale.fill_(half)
    else:
        clf.shift.copy_(x.mean(0))
        clf.scale.copy_(x.std(0).clamp_min(1e-6))


def data_hash(x: Tensor, y: Tensor, spec: DataSpec, settings: str = "") -> str:
    """SHA-256 of the examples, labels, spec, architecture and training settings: the cache key."""
    h = hashlib.sha256((ARCH + settings).encode())
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
    """Train a `FeatureClassifier` with Adam and cross-entropy for about ``steps`` steps (whole
    epochs, 2..20), seeded by ``seed``; the global RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clf = FeatureClassifier(spec)
    _fit_scaling(clf, x)
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    per_epoch = max(1, math.ceil(len(x) / batch_size))
    epochs = min(20, max(2, math.ceil(steps / per_epoch)))
    clf.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = nn.functional.cross_entropy(clf(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return clf.eval()


def get_classifier(x: Tensor, y: Tensor | None, spec: DataSpec, *, name: str = "data",
                   x_val: Tensor | None = None, y_val: Tensor | None = None, seed: int = 0,
                   steps: int = 1500, cache: bool = True, verbose: bool = False) -> tuple[FeatureClassifier, dict]:
    """The data set's feature classifier: loaded from the cache, or trained and cached.

    Args:
        x: (n, *event_shape) training examples in data space; y: (n,) their labels.
        spec: the data's spec; name: the data set's name (part of the file name).
        x_val, y_val: held-out examples for the accuracy recorded with the classifier.
        steps: about this many training steps (see `train_classifier`).
        cache: read and write the cache directory (`cache_dir`).
    Returns:
        (classifier in eval mode, info dict: path, accuracy, epochs, hash, seconds to train).
    """
    if y is None:
        raise NotSupported(f"{name} has no class labels, so genlab cannot train the classifier whose "
                           "features classifier-FID uses; sample metrics fall back to raw examples")
    x = x.detach().cpu().float()
    y = y.detach().cpu().long()
    key = data_hash(x, y, spec, f"seed={seed},steps={steps}")
    stem = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(name).name or 'data')}-{key[:16]}"
    folder = cache_dir() / "classifiers"
    path_t, path_j = folder / f"{stem}.safetensors", folder / f"{stem}.json"
    if cache and path_t.is_file() and path_j.is_file():
        info = io.read_json(path_j)
        if info.get("hash") == key and info.get("arch") == ARCH:
            clf = FeatureClassifier(spec)
            clf.load_state_dict(io.load_tensors(path_t, info.get("sha256")))
            return clf.eval(), {**info, "path": str(path_t), "cached": True}
    if verbose:
        print(f"training the feature classifier for {name} ({len(x)} examples); it is cached in {folder}")
    t0 = time.perf_counter()
    clf = train_classifier(x, y, spec, seed=seed, steps=steps)
    info = {"arch": ARCH, "hash": key, "data": name, "n_train": len(x), "seed": seed, "steps": steps,
            "features": FEATURES, "train_accuracy": accuracy(clf, x, y),
            "val_accuracy": accuracy(clf, x_val.float(), y_val.long()) if x_val is not None and y_val is not None
            else None, "n_val": None if x_val is None else len(x_val), "seconds": time.perf_counter() - t0}
    if cache:
        info["sha256"] = io.save_tensors(path_t, clf.state_dict())
        io.write_json(path_j, info)
    return clf, {**info, "path": str(path_t) if cache else None, "cached": False}


@torch.no_grad()
def classifier_features(clf: FeatureClassifier, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Penultimate-layer features (n, FEATURES) of data-space examples ``x: (n, *event_shape)``."""
    clf.eval()
    x = x.detach().cpu().float().reshape(len(x), *clf.spec.event_shape)
    return torch.cat([clf.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
