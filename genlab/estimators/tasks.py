"""scikit-learn faces of two tasks: outlier detection and multiple imputation.

* `GenerativeOutlierDetector`: a density model of the training data and one of the scores of
  `genlab.tasks.outliers` (raw likelihood, typicality, likelihood ratio, input complexity); the
  threshold is set at a false-positive rate on a held-out part of ``X``. Follows scikit-learn's
  outlier-detector convention (`IsolationForest`): ``score_samples`` is higher for more normal
  examples, ``decision_function < 0`` and ``predict == -1`` for outliers.
* `GenerativeImputer`: draws from ``p(missing | observed)`` with `genlab.tasks.impute.impute`;
  ``transform`` fills the NaNs with the mean of the draws, ``sample_draws`` returns the draws.

Example:
    >>> det = GenerativeOutlierDetector("gaussian", score="nll", fpr=0.05).fit(X)
    >>> det.predict(X_new)                      # (n,), +1 inlier / -1 outlier
    >>> GenerativeImputer("gmm", n_components=3).fit(X).transform(X_with_nans)
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.stats
import torch
from sklearn.base import OutlierMixin, TransformerMixin

from ..data.spec import Kind
from .base import Estimator, as_array, infer_spec
from ..tasks import outliers as O
from ._params import PassThroughParams

SCORES = ("nll", "typicality", "ratio", "complexity")


class _Params(PassThroughParams):
    """`PassThroughParams` with a fitted-shape check shared by the two estimators."""

    def _check_width(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "input_shape_"):
            raise AttributeError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")
        if X.ndim < 2 or X.shape[1:] != self.input_shape_:
            raise ValueError(f"X has shape {X.shape}, but {type(self).__name__} was fitted on examples of "
                             f"shape {self.input_shape_}: pass (n_samples, {', '.join(map(str, self.input_shape_))})")
        return X


class GenerativeOutlierDetector(OutlierMixin, _Params):
    """Outlier detection with a generative model, as a scikit-learn estimator.

    Args:
        family: a family with a likelihood, a bound or an energy (gaussian, gmm, kde, made, maf,
            realnvp, vae, pixelcnn, ebm, ...).
        score: ``nll`` (``-log p(x)``), ``typicality`` (``|-log p(x) - H|``, Nalisnick et al.
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
        rate, bg_weight_decay: the background model of ``score="ratio"``.
        seed: the held-out split and the background's perturbation.
        data_kind, levels: how ``X`` is read (`genlab.estimators.infer_spec`), decided on all of ``X``.
        **config: trainer settings and the family's hyperparameters (see `genlab.Estimator`).

    Fitted attributes: ``model_`` (the `genlab.Estimator`), ``background_`` (``ratio`` only),
    ``entropy_`` (``H`` in nats), ``threshold_`` (on the anomaly score ``-score_samples``),
    ``offset_`` (``= -threshold_``, as in `IsolationForest`), ``heldout_scores_``.
    """

    _OWN = ("family", "score", "fpr", "holdout", "compressor", "rate", "bg_weight_decay", "seed",
            "data_kind", "levels")

    def __init__(self, family: str = "gaussian", **params: Any):
        self.family = family
        self.score = params.pop("score", "typicality")
        self.fpr = params.pop("fpr", 0.05)
        self.holdout = params.pop("holdout", 0.2)
        self.compressor = params.pop("compressor", "zlib")
        self.rate = params.pop("rate", 0.2)
        self.bg_weight_decay = params.pop("bg_weight_decay", 0.01)
        self.seed = params.pop("seed", 0)
        self.data_kind = params.pop("data_kind", "auto")
        self.levels = params.pop("levels", None)
        self._store(params)

    def fit(self, X, y=None) -> "GenerativeOutlierDetector":
        """Train on ``1 - holdout`` of ``X: (n_samples, *event_shape)``; threshold on the rest."""
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {self.score!r}")
        if not 0 < self.fpr < 1 or not 0 < self.holdout < 1:
            raise ValueError(f"fpr and holdout must lie in (0, 1), got fpr={self.fpr}, holdout={self.holdout}")
        X = as_array(X)
        if np.isnan(X).any():
            raise ValueError("X contains NaN; impute first (e.g. GenerativeImputer in a Pipeline)")
        n_held = int(round(self.holdout * len(X)))
        if n_held < 20 or len(X) - n_held < 20:
            raise ValueError(f"need at least 20 training and 20 held-out examples; got {len(X)} examples "
                             f"with holdout={self.holdout}")
        spec = infer_spec(X, self.data_kind, self.levels)
        kw = {**self._config(), "data_kind": spec.kind.value, "levels": spec.levels}
        perm = np.random.default_rng(self.seed).permutation(len(X))
        Xt, Xh = X[perm[n_held:]], X[perm[:n_held]]
        self.input_shape_ = X.shape[1:]
        self.n_features_in_ = int(np.prod(self.input_shape_))
        self.model_ = Estimator(self.family, **kw).fit(Xt)
        O.check_scorable(self.model_.model_)
        if self.score == "ratio":
            g = torch.Generator().manual_seed(self.seed)
            noisy = O.perturb_like(torch.as_tensor(Xt), self.rate, spec, g).numpy()
            self.background_ = Estimator(self.family, **{**kw, "weight_decay": self.bg_weight_decay}).fit(noisy)
        if self.score == "complexity":
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
        if self.score == "nll":
            return nll
        if self.score == "typicality":
            return (nll - self.entropy_).abs()
        x = torch.as_tensor(X, dtype=torch.float32)
        if self.score == "ratio":
            b = self.background_.model_
            return O.likelihood_ratio_scores(nll, O.nll_scores(b, b.check_input(x)))
        return O.complexity_scores(nll, x, self.n_features_in_, compressor=self.compressor, quantizer=self.quantizer_)

    def score_samples(self, X) -> np.ndarray:
        """Normality of each example (the opposite of the anomaly score; higher = more normal): (n,)."""
        X = self._check_width(as_array(X))
        return -self._anomaly(X, self._nll(X)).numpy()

    def batch_test(self, X, n_boot: int = 2000) -> dict[str, Any]:
        """Is the batch ``X`` of m examples, *together*, from the training distribution? The
        typicality test of Nalisnick et al. (2019, Sec. 3-4): statistic ``|mean NLL(X) - H|``, its
        null distribution bootstrapped from ``n_boot`` batches of m held-out examples (drawn with
        replacement, seeded by ``seed``). Works with every ``score`` (it uses the model's NLL only).

        Returns: ``statistic`` (nats), ``threshold`` (the null's 1 - fpr quantile), ``p_value``
        (share of null batches at least as atypical; 1/(n_boot+1) at the least), ``outlier`` (bool),
        ``m``. With m = 1 this is ``score="typicality"`` on one example, and far weaker than m = 5+.
        """
        X = self._check_width(as_array(X))
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

    _OWN = ("family", "n_draws", "statistic", "sweeps", "random_state", "data_kind", "levels")
    STATISTICS = ("auto", "mean", "median", "mode")

    def __init__(self, family: str = "gmm", **params: Any):
        self.family = family
        self.n_draws = params.pop("n_draws", 5)
        self.statistic = params.pop("statistic", "auto")
        self.sweeps = params.pop("sweeps", None)
        self.random_state = params.pop("random_state", 0)
        self.data_kind = params.pop("data_kind", "auto")
        self.levels = params.pop("levels", None)
        self._store(params)

    def fit(self, X, y=None) -> "GenerativeImputer":
        """Train on the rows of ``X: (n_samples, *shape)`` with no NaN."""
        X = as_array(X).astype(np.float64)
        if X.ndim < 2:
            raise ValueError(f"X must have shape (n_samples, n_features), got {X.shape}")
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
        self.input_shape_ = X.shape[1:]
        self.n_features_in_ = int(np.prod(self.input_shape_))
        self.n_complete_rows_ = int(complete.sum())
        return self

    def sample_draws(self, X, n_draws: int | None = None) -> np.ndarray:
        """``n_draws`` completions of ``X``: (n_draws, n_samples, *shape); observed entries copied."""
        from ..tasks.impute import impute

        X = self._check_width(as_array(X).astype(np.float64))
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
        X = as_array(X).astype(np.float64)
        draws = self.sample_draws(X)
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
