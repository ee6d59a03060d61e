"""get_params / set_params for the task estimators, whose signature names their own parameters and
passes ``**config`` (the family's and the trainer's settings) through to `genlab.Estimator`.
scikit-learn's default introspects the named parameters only; the passed-through ones are kept in
a private dict (nothing but parameters is set in ``__init__``) and validated at ``fit``."""
from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator


class PassThroughParams(BaseEstimator):
    """`BaseEstimator` whose ``get_params`` adds the ``**config`` given to ``__init__`` (stored in
    ``_family_params`` by `_keep`), so that ``clone`` and grid searches over them work."""

    def _keep(self, config: dict[str, Any]) -> None:
        self._family_params = dict(config)

    def __getattr__(self, name: str) -> Any:
        # reached only when normal lookup fails: a passed-through setting reads as an attribute
        params = self.__dict__.get("_family_params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {**super().get_params(deep=deep), **self._family_params}

    def set_params(self, **params: Any) -> "PassThroughParams":
        own = set(self._get_param_names())
        for k, v in params.items():
            if k in own:
                setattr(self, k, v)
            else:
                self._family_params = {**self._family_params, k: v}
        return self

    def _config(self) -> dict[str, Any]:
        return dict(self._family_params)
