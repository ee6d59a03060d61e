"""Metrics: pure functions of tensors or of a model and data, returning numbers."""
from .likelihood import Estimate, bits_per_dim, log_likelihoods, mean_se, nll

__all__ = ["Estimate", "bits_per_dim", "log_likelihoods", "mean_se", "nll"]
