"""The one trainer (`Trainer`), its settings (`TrainConfig`) and why a run stopped (`StopReason`)."""
from .config import TrainConfig
from .stop import StopReason
from .trainer import Trainer, TrainingDiverged

__all__ = ["StopReason", "TrainConfig", "Trainer", "TrainingDiverged"]
