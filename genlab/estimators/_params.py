"""get_params / set_params for the task estimators that pass ``**config`` through to
`genlab.Estimator` (scikit-learn's default introspects ``__init__``'s named arguments only)."""
from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator

from .base import Estimator


class PassThroughParams(BaseEstimator):
    """get_params / set_params over the class's own keys (``_OWN``) plus the ``**config`` passed
    through to `genlab.Estimator`, so that ``sklearn.base.clone`` and grid searches work."""

    _OWN: tuple[str, ...] = ()

    def _store(self, params: dict[str, Any]) -> None:
        self._extra = list(params)
        for k, v in params.items():
            setattr(self, k, v)
        Estimator(self.family, **params)  # unknown family / parameter: a clear error now, not at fit

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (*self._OWN, *self._extra)}

    def set_params(self, **params: Any) -> "PassThroughParams":
        for k, v in params.items():
            setattr(self, k, v)
            if k not in self._OWN and k not in self._extra:
                self._extra.append(k)
        return self

    def _config(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._extra}
