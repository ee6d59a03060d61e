"""The scikit-learn face of genlab: `Estimator` (any family: fit / score_samples / score / sample /
transform) and the task estimators built on it (`GenerativeClassifier`, `GenerativeImputer`,
`GenerativeOutlierDetector`). It sits above ``tasks/`` (the task functions it wraps)."""
from .base import Estimator, as_array, infer_spec
from .classify import GenerativeClassifier
from .tasks import GenerativeImputer, GenerativeOutlierDetector

__all__ = ["Estimator", "GenerativeClassifier", "GenerativeImputer", "GenerativeOutlierDetector",
           "as_array", "infer_spec"]
