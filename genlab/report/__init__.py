"""Figures, the result printer and the HTML report: drawn for the layer that asks for them."""
from .figures import image_grid, loss_curves, save_run_figures, save_samples, save_strips
from .printing import print_eval

__all__ = ["image_grid", "loss_curves", "print_eval", "save_run_figures", "save_samples", "save_strips"]
