"""genlab: one library and one command-line tool for every family of generative model."""
from .version import __version__

# every public name is imported on first use: `genlab --help` and `genlab --version` start
# without importing torch (seconds)
_LAZY = {"DataSpec": "data.spec", "Kind": "data.spec", "families": "registry", "get_family": "registry",
         "make": "registry", "register": "registry", "load": "io", "save": "io", "Estimator": "estimators",
         "GenerativeClassifier": "estimators", "GenerativeImputer": "estimators",
         "GenerativeOutlierDetector": "estimators", "Trainer": "train", "load_dataset": "data",
         **dict.fromkeys(("Batch", "Conditional", "Density", "Energy", "GaussianMixtureForm", "GenerativeModel",
                          "Imputer", "Latent", "Loss", "NotSupported", "Objective"), "protocol")}

__all__ = ["DataSpec", "Kind", "Batch", "Conditional", "Density", "Energy", "GaussianMixtureForm",
           "GenerativeModel", "Imputer", "Latent", "Loss", "NotSupported", "Objective", "families", "get_family", "make",
           "register", "load", "save", "Estimator", "GenerativeClassifier", "GenerativeImputer",
           "GenerativeOutlierDetector", "Trainer", "load_dataset"]


def __getattr__(name):  # lazy: keep `import genlab` light and free of import cycles
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f"genlab.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):  # a submodule (`genlab.train.TrainConfig` after `import genlab`)
        try:
            return importlib.import_module(f"genlab.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"genlab.{name}":
                raise
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
