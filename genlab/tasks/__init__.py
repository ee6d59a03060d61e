"""Tasks built on the protocol: classification, outlier detection, imputation, interpolation.

Each task works for every family with the capability it needs (decided from ``density`` and
the mixins, never from the family's name) and raises `NotSupported` with the reason otherwise.
"""
from .classify import GenerativeClassifier
from .estimators import GenerativeImputer, GenerativeOutlierDetector

__all__ = ["GenerativeClassifier", "GenerativeImputer", "GenerativeOutlierDetector"]
