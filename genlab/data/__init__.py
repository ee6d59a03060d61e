"""Data: the `DataSpec` of an example, named data sets and user files, and splits."""
from .dataset import Dataset
from .datasets import dataset_names, load_dataset
from .spec import DataSpec, Kind
from .splits import Splits, split

__all__ = ["DataSpec", "Kind", "Dataset", "load_dataset", "dataset_names", "Splits", "split"]
