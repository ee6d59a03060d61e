"""The one trainer and the helpers that run it on named data (`run.py`)."""
from .trainer import TrainConfig, Trainer, TrainingDiverged, train_config

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "train_config"]
