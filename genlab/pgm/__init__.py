"""Probabilistic graphical models: exact inference, sampling and learning for discrete Bayesian
networks (`inference`, `learn`); the families built on them are in ``genlab.models``."""
