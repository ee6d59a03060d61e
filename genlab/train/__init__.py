"""The one trainer and the helpers that run it on named data (`run.py`)."""
from .trainer import TrainConfig, Trainer, TrainingDiverged

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged"]
