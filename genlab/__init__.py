"""genlab: one library and one command-line tool for every family of generative model.

The names here are the public face: `make` a model of any family (a torch module), train it with
`Trainer`, `save` / `load` run directories, or use the scikit-learn face (`Estimator`, the task
estimators). The public modules:

* `genlab.data`: built-in data sets and user files (`load_dataset`), `split`, `DataSpec`.
* `genlab.estimators`: the scikit-learn estimators (``fit``, ``score_samples``, ``sample``, ...).
* `genlab.train`: the one `Trainer`, its settings (`genlab.train.TrainConfig`), why a run stopped.
* `genlab.metrics`: metrics as pure functions (`genlab.metrics.nll`, ...), in nats unless named bits.
* `genlab.tasks`: outlier detection, imputation, interpolation, lossless compression.
"""
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
