"""The scikit-learn face: ``Estimator(family, **config)`` with fit / score_samples / score /
sample / transform / inverse_transform, and get_params / set_params so that
``sklearn.base.clone`` and ``GridSearchCV`` work. ``transform`` gives latent codes, so an Estimator
is the first step of a ``Pipeline`` (e.g. codes -> ``LogisticRegression``; ``bench/represent.py``).

Example:
    >>> from sklearn.datasets import load_digits
    >>> est = genlab.Estimator("gmm", n_components=5).fit(load_digits().data)
    >>> est.score(load_digits().data[:100])      # mean log-likelihood, nats per example
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from ..data.spec import DataSpec, Kind
from ..protocol import Decoder, Latent, NotSupported
from ..registry import families, get_family, make
from ..train import TrainConfig, Trainer

_TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("progress", "device"))
_OWN_KEYS = ("family", "data_kind", "levels", "val_fraction", "verbose", "device")
_ENCODE_BATCH = 1024  # examples per encode call in transform (bounds memory, e.g. DDIM on 28x28)


def families_where(test: Callable[[type], bool]) -> str:
    """The registered families whose class passes ``test``, comma-separated (for error messages)."""
    return ", ".join(f for f in families() if test(get_family(f))) or "none"


def infer_spec(X: np.ndarray, kind: str = "auto", levels: int | None = None,
               num_classes: int | None = None) -> DataSpec:
    """A `DataSpec` for an array of examples ``X: (n, *event_shape)``.

    ``kind="auto"``: booleans or integers in {0, 1} -> binary; non-negative integer values
    (any dtype) below 256 -> discrete with ``max + 1`` levels; anything else -> continuous.
    Pass ``kind``/``levels`` to override (e.g. grey images whose top level is not observed).
    """
    if X.ndim < 2:
        raise ValueError(f"X must have shape (n_samples, n_features), got shape {X.shape}; "
                         "use X.reshape(-1, 1) for a single feature")
    shape = tuple(X.shape[1:])
    if kind == "auto":
        integral = X.dtype == bool or X.dtype.kind in "iu" or bool(np.all(np.mod(X, 1) == 0))
        if integral and X.min() >= 0 and X.max() <= 1:
            kind = "binary"
        elif integral and X.min() >= 0 and X.max() < 256:
            kind = "discrete"
        else:
            kind = "continuous"
    if kind in ("discrete", "categorical") and levels is None:
        levels = int(X.max()) + 1
    return DataSpec(shape, Kind(kind), levels if kind != "continuous" else None, num_classes)


class Estimator(TransformerMixin, BaseEstimator):
    """Any genlab family as a scikit-learn density estimator; for `Latent` families also a
    transformer (``transform`` / ``fit_transform`` give codes, ``inverse_transform`` decodes).

    Args:
        family: a registered family (``genlab.families()``).
        data_kind: ``auto`` | ``continuous`` | ``discrete`` | ``binary`` (see `infer_spec`).
        levels: number of discrete levels (default: max + 1 of the training data).
        val_fraction: share of ``X`` held out for validation (early stopping, KDE bandwidth).
        verbose: show a progress bar.
        device: ``cpu`` | ``cuda`` | ``auto``.
        **params: trainer settings (epochs, batch_size, lr, seed, ...) and the family's
            hyperparameters (see ``genlab train FAMILY --help``).
    """

    def __init__(self, family: str = "gaussian", **params: Any):
        self.family = family
        self.data_kind = params.pop("data_kind", "auto")
        self.levels = params.pop("levels", None)
        self.val_fraction = params.pop("val_fraction", 0.1)
        self.verbose = params.pop("verbose", False)
        self.device = params.pop("device", "cpu")
        self._extra = list(params)
        for k, v in params.items():
            setattr(self, k, v)
        self._check_keys(params)

    # -- scikit-learn parameter protocol ------------------------------------------------------
    def _check_keys(self, params: dict[str, Any]) -> None:
        fields = {f.name for f in dataclasses.fields(get_family(self.family).Config)}
        unknown = sorted(set(params) - fields - set(_TRAIN_KEYS))
        if unknown:
            raise ValueError(f"Estimator({self.family!r}): unknown parameter(s) {unknown}; trainer "
                             f"settings: {', '.join(_TRAIN_KEYS)}; {self.family} settings: {', '.join(sorted(fields))}")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (*_OWN_KEYS, *self._extra)}

    def set_params(self, **params: Any) -> "Estimator":
        if "family" in params:
            self.family = params.pop("family")
        self._check_keys({k: v for k, v in params.items() if k not in _OWN_KEYS})
        for k, v in params.items():
            setattr(self, k, v)
            if k not in _OWN_KEYS and k not in self._extra:
                self._extra.append(k)
        return self

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, X, y=None) -> "Estimator":
        """Fit on ``X: (n_samples, *event_shape)``; ``y`` are class labels for conditional families."""
        X = as_array(X)
        self.input_shape_ = X.shape[1:]
        num_classes = int(np.max(y)) + 1 if y is not None else None
        self.spec_ = infer_spec(X, self.data_kind, self.levels, num_classes)
        params = {k: getattr(self, k) for k in self._extra}
        train = TrainConfig(**{k: v for k, v in params.items() if k in _TRAIN_KEYS},
                             progress=self.verbose, device=self.device)
        x = torch.as_tensor(X, dtype=torch.float32)
        yt = torch.as_tensor(np.asarray(y), dtype=torch.long) if y is not None else None
        x_val = y_val = None
        n_val = int(round(self.val_fraction * len(x)))
        if n_val >= 1 and len(x) - n_val >= 2:
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(train.seed))
            x_val, x = x[perm[:n_val]], x[perm[n_val:]]
            if yt is not None:
                y_val, yt = yt[perm[:n_val]], yt[perm[n_val:]]
        model = make(self.family, self.spec_, seed=train.seed,
                     **{k: v for k, v in params.items() if k not in _TRAIN_KEYS})
        self.trainer_ = Trainer(model, train)
        self.model_ = self.trainer_.fit(x, yt, x_val, y_val)
        self.n_features_in_ = int(np.prod(self.input_shape_))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise AttributeError(f"this Estimator({self.family!r}) is not fitted yet; call fit(X) first")

    def score_samples(self, X, y=None) -> np.ndarray:
        """Per-example log-likelihood (or its lower bound) in nats: (n_samples,)."""
        self._check_fitted()
        from ..metrics import log_likelihoods

        x = self.model_.check_input(as_array(X))
        cond = torch.as_tensor(np.asarray(y), dtype=torch.long) if y is not None else None
        return log_likelihoods(self.model_, x, condition=cond).numpy()

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per example in nats (higher is better)."""
        return float(np.mean(self.score_samples(X, y)))

    def sample(self, n_samples: int = 1, random_state: int | None = None, y=None) -> np.ndarray:
        """Draw ``n_samples`` examples shaped like the training ``X``."""
        self._check_fitted()
        seed = random_state if random_state is not None else int(np.random.SeedSequence().entropy % 2**63)
        g = torch.Generator(device=self.trainer_.device).manual_seed(int(seed))
        cond = torch.as_tensor(np.asarray(y), dtype=torch.long) if y is not None else None
        x = self.model_.sample(n_samples, condition=cond, generator=g)
        return x.cpu().numpy().reshape(n_samples, *self.input_shape_)

    def transform(self, X) -> np.ndarray:
        """Latent codes of ``X: (n_samples, *event_shape)`` -> (n_samples, latent_dim), from the
        model's ``encode``: posterior means for vae / iwae, the encoder output for ae / wae, the
        base-space point for flows and i-ResNet, the DDIM x_T for ddpm, P(h = 1 | v) for rbm.

        Deterministic: the same ``X`` gives the same codes. Families that dequantize discrete data
        draw that noise from a fixed seed per call of ``encode`` (batches of 1024 rows), so a row's
        code can depend on its place in ``X``; on continuous data, or with a noise-free
        preprocessing (vae's discretized logistic), each row's code depends on that row only.
        ``fit_transform(X, y)`` fits with ``y`` (as a ``Pipeline`` does): conditional families
        (vae, flows, ddpm) then also see labels in training; codes are computed without them.
        Families without ``Latent`` (gan: a `Decoder` without encoder) raise `NotSupported`.
        """
        self._check_fitted()
        if not isinstance(self.model_, Latent):
            what = "no encoder into its latent space" if isinstance(self.model_, Decoder) else "no latent space"
            raise NotSupported(f"{self.family} has {what}; transform needs a Latent family "
                               f"({families_where(lambda c: issubclass(c, Latent))})")
        x = self.model_.check_input(as_array(X))
        with torch.no_grad():
            codes = [self.model_.encode(x[i:i + _ENCODE_BATCH]) for i in range(0, len(x), _ENCODE_BATCH)]
        return torch.cat(codes).reshape(len(x), -1).cpu().numpy()

    def inverse_transform(self, Z) -> np.ndarray:
        """Examples decoded from latent codes ``Z``, shaped like the training ``X`` (a `Decoder`)."""
        self._check_fitted()
        if not isinstance(self.model_, Decoder):
            raise NotSupported(f"{self.family} has no latent space; inverse_transform needs a family that decodes "
                               f"codes ({families_where(lambda c: issubclass(c, Decoder))})")
        with torch.no_grad():
            z = torch.as_tensor(np.asarray(Z), dtype=torch.float32, device=self.trainer_.device)
            return self.model_.decode(z).cpu().numpy().reshape(len(z), *self.input_shape_)


def as_array(X) -> np.ndarray:
    """X (numpy array, torch tensor, pandas frame or nested list) as a numpy array."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if hasattr(X, "to_numpy"):  # pandas
        X = X.to_numpy()
    X = np.asarray(X)
    if X.dtype == object or X.dtype.kind in "USO":
        raise ValueError(f"X must be numeric, got dtype {X.dtype}; encode strings as numbers first")
    if X.size == 0:
        raise ValueError("X is empty (0 samples)")
    return X
