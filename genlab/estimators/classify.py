"""Generative classification: ``p(y | x) ∝ p(x | y) p(y)`` (Bayes' rule) with any density family.

Either one density model per class (``log p(x | y=c)`` from the model fitted on class ``c``)
or, when the family is `Conditional`, one class-conditional model scored with ``condition=c``.
See Ng & Jordan (2002), "On discriminative vs. generative classifiers".

Example:
    >>> clf = genlab.GenerativeClassifier("gmm", n_components=4).fit(X, y)
    >>> clf.predict_proba(X[:5])        # (5, n_classes), rows sum to 1
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin

from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._input import check_X
from .base import Estimator, families_where, infer_spec
from ..protocol import Conditional, Density, NotSupported
from ..registry import get_family
from ._params import PassThroughParams



class GenerativeClassifier(ClassifierMixin, PassThroughParams):
    """A scikit-learn classifier from class-conditional densities.

    Args:
        family: a registered family whose ``density`` is exact or a bound (gaussian, gmm, kde,
            made, maf, vae, ...); families without a likelihood raise `NotSupported` at ``fit``.
        conditional: ``"auto"`` uses one class-conditional model when the family is
            `Conditional`, else one model per class; ``True`` / ``False`` force either way.
        priors: ``"empirical"`` (class frequencies of ``y``), ``"uniform"``, or an array of
            ``n_classes`` probabilities.
        data_kind, levels: how ``X`` is read (see `genlab.estimators.infer_spec`); decided once
            on the whole ``X`` so that every class model sees the same data space.
        **params: trainer settings and the family's hyperparameters, passed to each `Estimator`.
    """

    def __init__(self, family: str = "gaussian", *, conditional: Any = "auto", priors: Any = "empirical",
                 data_kind: str = "auto", levels: int | None = None, **config: Any):
        self.family = family
        self.conditional = conditional
        self.priors = priors
        self.data_kind = data_kind
        self.levels = levels
        self._keep(config)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    # -- fitting --------------------------------------------------------------------------------
    def _uses_conditional(self) -> bool:
        cls = get_family(self.family)
        if cls.density not in (Density.EXACT, Density.BOUND):
            ok = families_where(lambda c: c.density in (Density.EXACT, Density.BOUND))
            raise NotSupported(f"GenerativeClassifier needs log p(x | y); {self.family} has density "
                               f"'{cls.density.value}' (no likelihood). Use a family with an exact density "
                               f"or a bound: {ok}")
        if self.conditional == "auto":
            return issubclass(cls, Conditional)
        if self.conditional and not issubclass(cls, Conditional):
            raise NotSupported(f"{self.family} is not Conditional; use conditional=False (one model per class)")
        return bool(self.conditional)

    def _log_priors(self, counts: np.ndarray) -> np.ndarray:
        if isinstance(self.priors, str):
            if self.priors == "empirical":
                p = counts / counts.sum()
            elif self.priors == "uniform":
                p = np.full(len(counts), 1.0 / len(counts))
            else:
                raise ValueError(f"priors must be 'empirical', 'uniform' or an array, got {self.priors!r}")
        else:
            p = np.asarray(self.priors, dtype=float)
            if p.shape != counts.shape or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
                raise ValueError(f"priors must be {len(counts)} non-negative numbers summing to 1, got {p}")
        with np.errstate(divide="ignore"):
            return np.log(p)

    def fit(self, X, y) -> "GenerativeClassifier":
        """Fit on ``X: (n_samples, *event_shape)`` and labels ``y: (n_samples,)``."""
        if y is None:
            raise ValueError("GenerativeClassifier requires y to be passed, but the target y is None")
        X = check_X(self, X, reset=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        self.classes_, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
        if len(self.classes_) < 2:
            raise ValueError(f"need at least 2 classes, got {len(self.classes_)} class: one class cannot be "
                             "told from another")
        conditional = self._uses_conditional()
        spec = infer_spec(X, self.data_kind, self.levels)
        kw = self._config()
        kw.update(data_kind=spec.kind.value, levels=spec.levels)
        if conditional:
            config_cls = getattr(get_family(self.family), "Config", None)
            if config_cls is not None and "conditional" in {f.name for f in dataclasses.fields(config_cls)}:
                kw["conditional"] = True  # a family that models p(x) unless asked (the flows)
            self.models_ = [Estimator(self.family, **kw).fit(X, codes)]
        else:
            small = [str(c) for c, n in zip(self.classes_, counts) if n < 3]
            if small:
                raise ValueError(f"classes {small} have fewer than 3 examples; one model per class needs more")
            self.models_ = [Estimator(self.family, **kw).fit(X[codes == k]) for k in range(len(self.classes_))]
        self.conditional_ = conditional
        self.class_log_prior_ = self._log_priors(counts)
        return self

    # -- prediction -----------------------------------------------------------------------------
    def class_log_likelihood(self, X) -> np.ndarray:
        """``log p(x | y=c)`` in nats (a lower bound for BOUND families): (n_samples, n_classes)."""
        check_is_fitted(self, "models_")
        X = check_X(self, X, reset=False)
        if self.conditional_:
            m = self.models_[0]
            return np.stack([m.score_samples(X, np.full(len(X), k)) for k in range(len(self.classes_))], 1)
        return np.stack([m.score_samples(X) for m in self.models_], 1)

    def predict_log_proba(self, X) -> np.ndarray:
        """``log p(y=c | x)`` by Bayes' rule: (n_samples, n_classes)."""
        joint = torch.as_tensor(self.class_log_likelihood(X) + self.class_log_prior_, dtype=torch.float64)
        return (joint - torch.logsumexp(joint, 1, keepdim=True)).numpy()

    def predict_proba(self, X) -> np.ndarray:
        """``p(y=c | x)``: (n_samples, n_classes), rows sum to 1."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each example: (n_samples,)."""
        check_is_fitted(self, "models_")
        return self.classes_[np.argmax(self.predict_log_proba(X), 1)]
