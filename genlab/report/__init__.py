"""Figures and reports."""
from .figures import image_grid, loss_curves, save_samples

__all__ = ["image_grid", "loss_curves", "save_samples"]
