"""The scikit-learn face of genlab: one estimator class per family (``genlab.estimators.GMM``,
``genlab.estimators.RealNVP``, ...; ``genlab.Estimator("gmm", ...)`` builds them by name) and the
task estimators built on them (`GenerativeClassifier`, `GenerativeImputer`,
`GenerativeOutlierDetector`). It sits above ``tasks/`` (the task functions it wraps)."""
from .base import Estimator, LatentEstimator, UnknownParameter, as_array, infer_spec
from .classify import GenerativeClassifier
from .base import class_names, estimator_class
from .tasks import GenerativeImputer, GenerativeOutlierDetector

__all__ = ["Estimator", "GenerativeClassifier", "GenerativeImputer", "GenerativeOutlierDetector",
           "LatentEstimator", "UnknownParameter", "as_array", "estimator_class", "infer_spec"]


def __getattr__(name: str):
    """``genlab.estimators.GMM`` and the other per-family classes, made on first use (pickle finds
    them here by name)."""
    family = class_names().get(name)
    if family is None:
        raise AttributeError(f"module 'genlab.estimators' has no attribute {name!r}")
    return estimator_class(family)


def __dir__() -> list[str]:
    return sorted([*globals(), *class_names()])
