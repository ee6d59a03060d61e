"""Input checks of the scikit-learn face: arrays, tensors and pandas frames in; a `DataSpec` for
them; labels. Every refusal names the problem and the fix (scikit-learn's own messages for what
its conformance suite tests: sparse, complex, empty, NaN/inf, wrong width)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import validate_data

from ..data.spec import DataSpec, Kind


def as_array(X: Any) -> np.ndarray:
    """X (numpy array, torch tensor, pandas frame or nested list) as a numeric numpy array.

    Raises:
        ValueError: strings / objects that are not numbers, complex values, or no examples.
    """
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if hasattr(X, "to_numpy"):  # pandas
        X = X.to_numpy()
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise ValueError("Complex data not supported: X has complex values; pass their real part "
                         "(X.real) or split real and imaginary parts into columns")
    if X.dtype == object or X.dtype.kind in "USO":
        raise ValueError(f"X must be numeric, got dtype {X.dtype}; encode strings as numbers first")
    if X.size == 0:
        raise ValueError(f"X is empty (shape {X.shape}): found 0 sample(s)")
    return X


def infer_spec(X: np.ndarray, kind: str = "auto", levels: int | None = None,
               num_classes: int | None = None) -> DataSpec:
    """A `DataSpec` for an array of examples ``X: (n, *event_shape)``.

    ``kind="auto"``: booleans or integers in {0, 1} -> binary; non-negative integer values
    (any dtype) below 256 -> discrete with ``max + 1`` levels; anything else -> continuous.
    Pass ``kind``/``levels`` to override (e.g. grey images whose top level is not observed).
    """
    X = as_array(X)
    if X.ndim < 2:
        raise ValueError(f"X must have shape (n_samples, n_features), got shape {X.shape}; "
                         "use X.reshape(-1, 1) for a single feature")
    if kind not in ("auto", *(k.value for k in Kind)):
        raise ValueError(f"data_kind must be 'auto' or one of {[k.value for k in Kind]}, got {kind!r}")
    if not np.isfinite(X.astype(np.float64, copy=False)).all():
        raise ValueError("Input X contains NaN or infinity; remove or impute those entries "
                         "(e.g. genlab.estimators.GenerativeImputer in a Pipeline)")
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
    if kind == "binary":
        levels = 2
    return DataSpec(shape, Kind(kind), levels if kind != "continuous" else None, num_classes)


def categorical_codes(X: Any, models_categorical: bool, who: str
                      ) -> tuple[Any, dict[str, list] | None]:
    """A pandas frame's ``category`` columns replaced by their integer codes (other input is
    returned as it is), and the categories of each such column (None when there are none).

    Raises:
        TypeError: a column that is neither numeric nor ``category`` (named), or ``category``
            columns given to a family that does not model categorical data.
    """
    if not hasattr(X, "dtypes") or not hasattr(X, "columns"):
        return X, None
    import pandas as pd

    cats: dict[str, list] = {}
    for col, dtype in X.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            cats[str(col)] = list(dtype.categories)
        elif not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise TypeError(f"column {col!r} has dtype {dtype}, which is not numeric: convert it to numbers, "
                            "or to a pandas 'category' column for a family that models categorical data")
    if not cats:
        return X, None
    if not models_categorical:
        raise TypeError(f"columns {sorted(cats)} are pandas 'category' columns, but {who} does not model "
                        "categorical data; use a family that does (bayesnet, ...) or one-hot encode them")
    if len(cats) != X.shape[1]:
        mixed = [str(c) for c in X.columns if str(c) not in cats]
        raise TypeError(f"columns {mixed} are numeric while the others are 'category': categorical data "
                        "needs every column categorical (pd.cut / astype('category') them)")
    out = X.copy()
    for col in X.columns:
        codes = X[col].cat.codes.to_numpy()
        out[col] = np.where(codes < 0, np.nan, codes) if (codes < 0).any() else codes
    return out, cats


def check_X(est: Any, X: Any, *, reset: bool, allow_nan: bool = False) -> np.ndarray:
    """``X`` checked the scikit-learn way (`validate_data`: dense, numeric, finite unless
    ``allow_nan``, ``n_features_in_`` / ``feature_names_in_`` set when ``reset`` and compared
    otherwise). Examples with more than one axis (images) are checked flattened and come back in
    their shape; at ``reset`` ``input_shape_`` records it."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    shape = None
    if isinstance(X, np.ndarray) and X.ndim > 2:
        shape = X.shape[1:]
        if not reset and shape != est.input_shape_:
            raise ValueError(f"X has examples of shape {shape}, but {type(est).__name__} was fitted on "
                             f"examples of shape {est.input_shape_}")
        X = X.reshape(len(X), -1)
    X = validate_data(est, X, reset=reset, dtype="numeric", accept_sparse=False,
                      ensure_all_finite="allow-nan" if allow_nan else True, ensure_min_samples=1)
    if X.dtype.kind == "b":
        X = X.astype(np.uint8)
    if reset:
        est.input_shape_ = tuple(shape) if shape is not None else X.shape[1:]
    if len(est.input_shape_) > 1:
        X = X.reshape(len(X), *est.input_shape_)
    return X


def at_least_two(X: np.ndarray, who: str) -> None:
    """Refuse a single example: no family estimates a distribution from n_samples=1."""
    if len(X) < 2:
        raise ValueError(f"{who}.fit got 1 sample (n_samples=1); a distribution needs at least 2 examples")


def check_levels(X: np.ndarray, who: str, family: str) -> None:
    """Refuse what a family of discrete data cannot read: negative or non-integer values."""
    if X.min() < 0:
        raise ValueError(f"Negative values in data passed to {who}.fit: the {family} family models levels "
                         "0, 1, ..., L-1; shift or encode the data (e.g. OrdinalEncoder)")
    if not np.all(np.mod(X, 1) == 0):
        raise ValueError(f"{who}.fit: the {family} family models integer levels 0..L-1, but X has non-integer "
                         "values; discretize them (e.g. KBinsDiscretizer) or use a family for continuous data")


def check_labels(y: Any, n: int, who: str) -> np.ndarray:
    """Class labels ``y`` as an int64 array of shape (n,), each in [0, K).

    Raises:
        ValueError: a wrong length or shape, non-integer or negative labels.
    """
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if y.dtype == object:
        type_of_target(y, input_name="y", raise_unknown=True)  # "Unknown label type" for what is no label
        y = y.astype(np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{who}: y must hold one class label per example, shape ({n},); got shape {y.shape}")
    if y.dtype.kind not in "iub":
        if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or not np.all(np.mod(y, 1) == 0):
            raise ValueError(f"{who}: labels y must be integers 0..K-1 (class indices), got dtype {y.dtype}; "
                             "encode them with sklearn.preprocessing.LabelEncoder")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"{who}: labels y must be integers 0..K-1, got {int(y.min())}; "
                         "encode them with sklearn.preprocessing.LabelEncoder")
    return y


def codes_of(frame: Any, categories: dict[str, list]) -> Any:
    """A frame's category columns as the integer codes of the training ``categories``."""
    import pandas as pd

    out = frame.copy()
    for col, cats in categories.items():
        if col not in frame.columns:
            continue  # validate_data names the missing column
        codes = pd.Index(cats).get_indexer(frame[col].astype(object))
        if (codes < 0).any():
            bad = sorted(set(frame[col][codes < 0].astype(str)))[:5]
            raise ValueError(f"column {col!r} has values {bad} not seen in training (categories {cats})")
        out[col] = codes
    return out


def as_frame_like(est: Any, values: np.ndarray) -> Any:
    """Examples ``(n, d)`` as a DataFrame with the columns ``est`` was fitted on (category
    columns get their categories back; without names: x0, x1, ...)."""
    import pandas as pd

    if values.ndim != 2:
        raise ValueError(f"as_frame needs 2-D training data (a table); examples here have shape {est.input_shape_}")
    cols = list(getattr(est, "feature_names_in_", [f"x{i}" for i in range(values.shape[1])]))
    frame = pd.DataFrame(values, columns=cols)
    for col, cats in (est.categories_ or {}).items():
        codes = np.clip(np.rint(frame[col].to_numpy()), 0, len(cats) - 1).astype(int)
        frame[col] = pd.Categorical.from_codes(codes, categories=cats)
    return frame
