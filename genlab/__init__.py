"""genlab: one library and one command-line tool for every family of generative model."""
from .data.spec import DataSpec, Kind
from .protocol import (Batch, Conditional, Density, Energy, GaussianMixtureForm, GenerativeModel,
                       Imputer, Latent, Loss, NotSupported, Objective)
from .registry import families, get_family, make, register

from .version import __version__

__all__ = ["DataSpec", "Kind", "Batch", "Conditional", "Density", "Energy", "GaussianMixtureForm",
           "GenerativeModel", "Imputer", "Latent", "Loss", "NotSupported", "Objective", "families", "get_family", "make",
           "register", "load", "save", "Estimator", "GenerativeClassifier", "GenerativeImputer",
           "GenerativeOutlierDetector", "Trainer", "load_dataset"]


def __getattr__(name):  # lazy: keep `import genlab` light and free of import cycles
    if name in ("load", "save"):
        from . import io
        return getattr(io, name)
    if name in ("Estimator", "GenerativeClassifier", "GenerativeImputer", "GenerativeOutlierDetector"):
        from . import estimators
        return getattr(estimators, name)
    if name == "Trainer":
        from .train import Trainer
        return Trainer
    if name == "load_dataset":
        from .data import load_dataset
        return load_dataset
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")
