"""The feature classifier of the sample metrics, kept in a cache folder (safetensors + JSON)
so that every evaluation of models of one data set compares them in the same feature space."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from torch import Tensor

from .. import io
from ..data import Dataset
from ..protocol import NotSupported
from .classifier import ARCH, FeatureClassifier, classifier_features, classifier_key, fit_classifier
from .samples import standardized

CACHE_ENV = "GENLAB_CACHE"
DEFAULT_CACHE = "~/.cache/genlab"  # gives way to $GENLAB_CACHE when that is set


def classifier_cache_dir(cache: str | Path | None = DEFAULT_CACHE) -> Path | None:
    """The folder that keeps feature classifiers: ``cache/classifiers``, where the default
    ``~/.cache/genlab`` gives way to ``$GENLAB_CACHE`` when that is set; None: no cache."""
    if cache is not None and str(cache) == DEFAULT_CACHE:
        cache = os.environ.get(CACHE_ENV) or cache
    return None if cache is None else Path(cache).expanduser() / "classifiers"


def feature_classifier(train: Dataset, val: Dataset | None = None, *, name: str = "data", seed: int = 0,
                       cache: str | Path | None = DEFAULT_CACHE,
                       verbose: bool = False) -> tuple[FeatureClassifier, dict[str, Any]]:
    """(classifier in eval mode, info) of `genlab.metrics.classifier.fit_classifier` (seeded by
    ``seed``, its accuracy measured on ``val``), read from the cache folder ``cache`` (see
    `classifier_cache_dir`; None: no files) or trained and written there; info adds ``path`` and
    ``cached``. `NotSupported` when the data have no labels, or fewer than 2 classes."""
    folder = classifier_cache_dir(cache)
    if folder is not None and train.y is not None:
        key = classifier_key(train.x, train.y, train.spec, seed=seed)
        stem = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(name).name or 'data')}-{key[:16]}"
        path_t, path_j = folder / f"{stem}.safetensors", folder / f"{stem}.json"
        try:
            info = io.read_json(path_j) if path_j.is_file() and path_t.is_file() else {}
            if info.get("hash") == key and info.get("arch") == ARCH:
                clf = FeatureClassifier(train.spec)
                clf.load_state_dict(io.load_tensors(path_t, info.get("sha256")))
                return clf.eval(), {**info, "path": str(path_t), "cached": True}
        except io.CorruptFile:
            pass  # a damaged cache entry is trained again and overwritten
        if verbose:
            print(f"training the feature classifier for {name} ({len(train)} examples); it is cached in {folder}")
    clf, info = fit_classifier(train.x, train.y, train.spec, name=name, seed=seed,
                               x_val=None if val is None else val.x, y_val=None if val is None else val.y)
    if folder is not None:
        info["sha256"] = io.save_tensors(path_t, clf.state_dict())
        io.write_json(path_j, info)
    return clf, {**info, "path": str(path_t) if folder is not None else None, "cached": False}


def sample_features(train: Dataset, test: Dataset, parts: tuple[Tensor, ...], *, use_classifier: bool,
                    classes: int | None, name: str, seed: int, cache: str | Path | None, verbose: bool = False
                    ) -> tuple[tuple[Tensor, ...], dict[str, Any], FeatureClassifier | None, str | None]:
    """Feature vectors of each of ``parts``: classifier features (`feature_classifier` of ``train``)
    when the data have labels, ``classes`` > 1 and ``use_classifier``; else the flattened examples
    standardized on ``train``.

    Returns:
        (features of each part, the ``features`` entry of an evaluation, the classifier or None,
        why there is no classifier or None).
    """
    why = ("classifier features switched off" if not use_classifier else
           "the data set has no class labels" if train.y is None else
           "the data spec names no classes" if not classes else None)
    if why is None:
        try:
            clf, info = feature_classifier(train, test, name=name, seed=seed, cache=cache, verbose=verbose)
            return (tuple(classifier_features(clf, t) for t in parts),
                    {"kind": "classifier", "classifier": {k: v for k, v in info.items() if k != "sha256"}}, clf, None)
        except NotSupported as e:
            why = str(e)
    return standardized(train.x, *parts), {"kind": "standardized examples", "why": why}, None, why
