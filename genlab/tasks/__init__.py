"""Tasks built on the protocol: outlier detection, imputation, interpolation, compression.

Each task works for every family with the capability it needs (decided from ``density`` and
the mixins, never from the family's name) and raises `NotSupported` with the reason otherwise.
Their scikit-learn estimators (`GenerativeClassifier`, `GenerativeImputer`,
`GenerativeOutlierDetector`) are in `genlab.estimators`, the layer above.

The public modules (the others are their helpers):

* `genlab.tasks.outliers`: ``outlier_scores``, ``nll_scores``, ``typicality_scores``, ... (higher
  = more anomalous), ``detection_metrics`` (AUROC, AUPR) and ``threshold_at_fpr``.
* `genlab.tasks.impute`: ``impute(model, x, mask, n_draws)``: draws of p(missing | observed).
* `genlab.tasks.interpolate`: ``interpolate(model, x0, x1, steps, kind)``, ``attribute_vector``,
  ``apply_attribute`` (latent families).
* `genlab.tasks.compress`: ``compress(model, x) -> bytes``, ``decompress(model, data)``
  (lossless, bit-exact) and ``measure`` (file size beside the model's NLL, in bits per dimension).
"""

# the public submodules, in reading order (also what the API reference renders: `docs/build.py`)
__all__ = ["outliers", "impute", "interpolate", "compress"]
