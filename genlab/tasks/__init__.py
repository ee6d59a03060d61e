"""Tasks built on the protocol: outlier detection, imputation, interpolation, compression.

Each task works for every family with the capability it needs (decided from ``density`` and
the mixins, never from the family's name) and raises `NotSupported` with the reason otherwise.
Their scikit-learn estimators (`GenerativeClassifier`, `GenerativeImputer`,
`GenerativeOutlierDetector`) are in `genlab.estimators`, the layer above.
"""
