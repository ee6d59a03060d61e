"""scikit-learn faces of two tasks: outlier detection and multiple imputation.

* `GenerativeOutlierDetector`: a density model of the training data and one of the scores of
  `genlab.tasks.outliers` (raw likelihood, typicality, likelihood ratio, input complexity); the
  threshold is set at a false-positive rate on a held-out part of ``X``. Follows scikit-learn's
  outlier-detector convention (`IsolationForest`): ``score_samples`` is higher for more normal
  examples, ``decision_function < 0`` and ``predict == -1`` for outliers.
* `GenerativeImputer`: draws from ``p(missing | observed)`` with `genlab.tasks.impute.impute`;
  ``transform`` fills the NaNs with the mean of the draws, ``sample_draws`` returns the draws.

Example:
    >>> det = GenerativeOutlierDetector("gaussian", anomaly_score="nll", fpr=0.05).fit(X)
    >>> det.predict(X_new)                      # (n,), +1 inlier / -1 outlier
    >>> GenerativeImputer("gmm", n_components=3).fit(X).transform(X_with_nans)
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.stats
import torch
from sklearn.base import OutlierMixin, TransformerMixin

from ..data.spec import Kind
from sklearn.utils.validation import check_is_fitted

from ._input import at_least_two, check_X
from .base import Estimator, infer_spec
from ..tasks import outliers as O
from ._params import PassThroughParams

SCORES = ("nll", "typicality", "ratio", "complexity")


class _Params(PassThroughParams):
    """`PassThroughParams` with the fitted-input check shared by the two estimators."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    def _check_width(self, X, allow_nan: bool = False) -> np.ndarray:
        check_is_fitted(self, "model_")
        return np.asarray(check_X(self, X, reset=False, allow_nan=allow_nan), dtype=np.float64)


class GenerativeOutlierDetector(OutlierMixin, _Params):
    """Outlier detection with a generative model, as a scikit-learn estimator.

    Args:
        family: a family with a likelihood, a bound or an energy (gaussian, gmm, kde, made, maf,
            realnvp, vae, pixelcnn, ebm, ...).
        anomaly_score: (``score=`` is read as this too) ``nll`` (``-log p(x)``), ``typicality`` (``|-log p(x) - H|``, Nalisnick et al.
            2019, one example per test), ``ratio`` (``-log p(x) + log p_bg(x)`` with the same
            family and config trained on the training part with a share ``rate`` of its entries
            replaced by uniform noise and AdamW weight decay ``bg_weight_decay``, Ren et al. 2019)
            or ``complexity`` (``-log2 p(x) - L(x)`` per dimension, with ``L`` the length of the
            8-bit example compressed by ``compressor``, Serra et al. 2020). The default is
            ``typicality``: ``complexity`` needs images (a compressor gains nothing on a short
            row of numbers: on 8x8 digits zlib's overhead makes uniform noise look simple).
        fpr: share of held-out inliers to flag; the threshold is their ``1 - fpr`` quantile.
        holdout: share of ``X`` kept out of training: it gives the threshold and the typical
            set's entropy estimate ``H`` (mean held-out NLL), both on data the model has not
            seen (training NLLs are optimistically low). At least 20 examples.
        compressor: ``zlib`` | ``lzma`` | ``png`` (images) | ``webp`` (images, lossless).
        rate, bg_weight_decay: the background model of ``anomaly_score="ratio"``.
        seed: the held-out split and the background's perturbation.
        data_kind, levels: how ``X`` is read (`genlab.estimators.infer_spec`), decided on all of ``X``.
        **config: trainer settings and the family's hyperparameters (see `genlab.Estimator`).

    Fitted attributes: ``model_`` (the `genlab.Estimator`), ``background_`` (``ratio`` only),
    ``entropy_`` (``H`` in nats), ``threshold_`` (on the anomaly score ``-score_samples``),
    ``offset_`` (``= -threshold_``, as in `IsolationForest`), ``heldout_scores_``.
    """

    def __init__(self, family: str = "gaussian", *, anomaly_score: str = "typicality", fpr: float = 0.05,
                 holdout: float = 0.2, compressor: str = "zlib", rate: float = 0.2, bg_weight_decay: float = 0.01,
                 seed: int = 0, data_kind: str = "auto", levels: int | None = None, **config: Any):
        if "score" in config:  # its name before it became anomaly_score (an attribute `score` hid score())
            anomaly_score = config.pop("score")
        self.family = family
        self.anomaly_score = anomaly_score
        self.fpr = fpr
        self.holdout = holdout
        self.compressor = compressor
        self.rate = rate
        self.bg_weight_decay = bg_weight_decay
        self.seed = seed
        self.data_kind = data_kind
        self.levels = levels
        self._keep(config)

    def fit(self, X, y=None) -> "GenerativeOutlierDetector":
        """Train on ``1 - holdout`` of ``X: (n_samples, *event_shape)``; threshold on the rest."""
        if self.anomaly_score not in SCORES:
            raise ValueError(f"anomaly_score must be one of {SCORES}, got {self.anomaly_score!r}")
        if not 0 < self.fpr < 1 or not 0 < self.holdout < 1:
            raise ValueError(f"fpr and holdout must lie in (0, 1), got fpr={self.fpr}, holdout={self.holdout}")
        X = np.asarray(check_X(self, X, reset=True))
        at_least_two(X, type(self).__name__)
        n_held = max(1, int(round(self.holdout * len(X))))
        if len(X) - n_held < 2:
            raise ValueError(f"need at least 2 training examples and 1 held-out example; got {len(X)} examples "
                             f"with holdout={self.holdout}")
        if n_held < 20:
            warnings.warn(f"{type(self).__name__}: the threshold and the entropy come from only {n_held} held-out "
                          "examples (20 or more make them reliable); pass more data or a larger holdout",
                          UserWarning, stacklevel=2)
        spec = infer_spec(X, self.data_kind, self.levels)
        kw = {**self._config(), "data_kind": spec.kind.value, "levels": spec.levels}
        perm = np.random.default_rng(self.seed).permutation(len(X))
        Xt, Xh = X[perm[n_held:]], X[perm[:n_held]]
        self.model_ = Estimator(self.family, **kw).fit(Xt)
        O.check_scorable(self.model_.model_)
        if self.anomaly_score == "ratio":
            g = torch.Generator().manual_seed(self.seed)
            noisy = O.perturb_like(torch.as_tensor(Xt), self.rate, spec, g).numpy()
            self.background_ = Estimator(self.family, **{**kw, "weight_decay": self.bg_weight_decay}).fit(noisy)
        if self.anomaly_score == "complexity":
            self.quantizer_ = O.ByteQuantizer.fit(torch.as_tensor(Xt, dtype=torch.float64), spec.levels)
        nll_h = self._nll(Xh)
        self._nll_heldout_ = nll_h.double()  # the null distribution of batch_test
        self.entropy_ = float(nll_h.mean())
        self.heldout_scores_ = self._anomaly(Xh, nll_h).numpy()
        self.threshold_ = O.threshold_at_fpr(torch.as_tensor(self.heldout_scores_), self.fpr)
        self.offset_ = -self.threshold_
        return self

    def _nll(self, X: np.ndarray) -> torch.Tensor:
        m = self.model_.model_
        return O.nll_scores(m, m.check_input(torch.as_tensor(X, dtype=torch.float32)))

    def _anomaly(self, X: np.ndarray, nll: torch.Tensor) -> torch.Tensor:
        """The chosen score, higher = more anomalous: (n,)."""
        if self.anomaly_score == "nll":
            return nll
        if self.anomaly_score == "typicality":
            return (nll - self.entropy_).abs()
        x = torch.as_tensor(X, dtype=torch.float32)
        if self.anomaly_score == "ratio":
            b = self.background_.model_
            return O.likelihood_ratio_scores(nll, O.nll_scores(b, b.check_input(x)))
        return O.complexity_scores(nll, x, self.n_features_in_, compressor=self.compressor, quantizer=self.quantizer_)

    def score_samples(self, X) -> np.ndarray:
        """Normality of each example (the opposite of the anomaly score; higher = more normal): (n,)."""
        X = self._check_width(X)
        return -self._anomaly(X, self._nll(X)).numpy().astype(np.float64)

    def batch_test(self, X, n_boot: int = 2000) -> dict[str, Any]:
        """Is the batch ``X`` of m examples, *together*, from the training distribution? The
        typicality test of Nalisnick et al. (2019, Sec. 3-4): statistic ``|mean NLL(X) - H|``, its
        null distribution bootstrapped from ``n_boot`` batches of m held-out examples (drawn with
        replacement, seeded by ``seed``). Works with every ``score`` (it uses the model's NLL only).

        Returns: ``statistic`` (nats), ``threshold`` (the null's 1 - fpr quantile), ``p_value``
        (share of null batches at least as atypical; 1/(n_boot+1) at the least), ``outlier`` (bool),
        ``m``. With m = 1 this is ``score="typicality"`` on one example, and far weaker than m = 5+.
        """
        X = self._check_width(X)
        if len(X) < 1 or n_boot < 100:
            raise ValueError(f"batch_test needs at least one example and n_boot >= 100, got {len(X)}, {n_boot}")
        nll_h = self._nll_heldout_
        g = torch.Generator().manual_seed(self.seed)
        idx = torch.randint(len(nll_h), (n_boot, len(X)), generator=g)
        null = (nll_h[idx].mean(1) - self.entropy_).abs()
        stat = float((self._nll(X).double().mean() - self.entropy_).abs())
        threshold = float(torch.quantile(null, 1 - self.fpr))
        p = (1 + int((null >= stat).sum())) / (n_boot + 1)
        return {"statistic": stat, "threshold": threshold, "p_value": p, "outlier": stat > threshold, "m": len(X)}

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for the examples flagged as outliers: (n,)."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers, -1 for outliers (anomaly score above ``threshold_``): (n,)."""
        return np.where(self.decision_function(X) < 0, -1, 1)


class GenerativeImputer(TransformerMixin, _Params):
    """Multiple imputation with a generative model, as a scikit-learn transformer.

    Missing entries are NaN. ``fit`` trains the family on the *complete* rows of ``X`` (no
    family here trains on partly observed rows; at least 10 are needed). ``transform`` draws
    ``n_draws`` completions from ``p(missing | observed)`` (exact for gaussian / gmm / bayesnet,
    ancestral, RePaint or Metropolis-within-Gibbs otherwise; see `genlab.tasks.impute`) and fills each NaN with a
    summary of its draws (``statistic``); observed entries are returned unchanged. Rows with every
    entry missing get draws from the model's marginal.

    Args:
        family: a family with a likelihood, an energy or an encoder (gmm, gaussian, made, vae, ...).
        n_draws: draws per row; ``sample_draws`` gives them, ``transform`` their summary.
        statistic: mean (least squared error) | median (least absolute error) | mode (the most
            frequent drawn value, ties to the smallest: always a value the data can take) | auto
            (mode for binary and categorical data, where a mean is no category; mean otherwise).
        sweeps: MCMC / Gibbs passes (approximate methods only); None: `impute`'s default
            (200 for a VAE's Metropolis-within-Gibbs, 20 otherwise).
        random_state: seed of the draws (each call to ``transform`` starts from it).
        data_kind, levels: how ``X`` is read (`genlab.estimators.infer_spec`).
        **config: trainer settings and the family's hyperparameters (see `genlab.Estimator`).
    """

    STATISTICS = ("auto", "mean", "median", "mode")

    def __init__(self, family: str = "gmm", *, n_draws: int = 5, statistic: str = "auto", sweeps: int | None = None,
                 random_state: int = 0, data_kind: str = "auto", levels: int | None = None, **config: Any):
        self.family = family
        self.n_draws = n_draws
        self.statistic = statistic
        self.sweeps = sweeps
        self.random_state = random_state
        self.data_kind = data_kind
        self.levels = levels
        self._keep(config)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN marks what to fill
        return tags

    def fit(self, X, y=None) -> "GenerativeImputer":
        """Train on the rows of ``X: (n_samples, *shape)`` with no NaN."""
        X = np.asarray(check_X(self, X, reset=True, allow_nan=True), dtype=np.float64)
        at_least_two(X, type(self).__name__)
        complete = ~np.isnan(X.reshape(len(X), -1)).any(1)
        if complete.sum() < 10:
            raise ValueError(f"GenerativeImputer trains on complete rows (no NaN) and needs at least 10; X has "
                             f"{int(complete.sum())} of {len(X)}. Drop the columns missing most often, or "
                             "fill them roughly (SimpleImputer) before fitting")
        Xc = X[complete]
        spec = infer_spec(Xc, self.data_kind, self.levels)
        self.model_ = Estimator(self.family, **{**self._config(), "data_kind": spec.kind.value,
                                                "levels": spec.levels}).fit(Xc)
        from ..tasks.impute import method_for
        self.method_ = method_for(self.model_.model_)
        self.n_complete_rows_ = int(complete.sum())
        return self

    def sample_draws(self, X, n_draws: int | None = None) -> np.ndarray:
        """``n_draws`` completions of ``X``: (n_draws, n_samples, *shape); observed entries copied."""
        return self._draws(self._check_width(X, allow_nan=True), n_draws)

    def _draws(self, X: np.ndarray, n_draws: int | None = None) -> np.ndarray:
        from ..tasks.impute import impute

        k = self.n_draws if n_draws is None else n_draws
        if k < 1:
            raise ValueError(f"n_draws must be >= 1, got {k}")
        mask = np.isnan(X)
        if not mask.any():
            return np.broadcast_to(X, (k, *X.shape)).copy()
        g = torch.Generator().manual_seed(int(self.random_state))
        x = torch.as_tensor(np.where(mask, 0.0, X), dtype=torch.float32)
        draws = impute(self.model_.model_, x, torch.as_tensor(mask), k, g, sweeps=self.sweeps)
        draws = draws.double().numpy().reshape(k, *X.shape)
        return np.where(mask, draws, X)

    def transform(self, X) -> np.ndarray:
        """``X`` with each NaN replaced by the ``statistic`` of its draws: (n_samples, *shape)."""
        if self.statistic not in self.STATISTICS:
            raise ValueError(f"statistic must be one of {self.STATISTICS}, got {self.statistic!r}")
        X = self._check_width(X, allow_nan=True)
        draws = self._draws(X)
        stat = self.statistic
        if stat == "auto":
            stat = "mode" if self.model_.model_.spec.kind in (Kind.BINARY, Kind.CATEGORICAL) else "mean"
        if stat == "mean":
            fill = draws.mean(0)
        elif stat == "median":
            fill = np.median(draws, 0)
        else:  # per entry, the most frequent value (ties: the smallest, as scipy.stats.mode)
            fill = scipy.stats.mode(draws, axis=0, keepdims=False).mode
        return np.where(np.isnan(X), fill, X)
