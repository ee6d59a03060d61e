"""Iterative samplers with one shape: Langevin, Gibbs, ancestral, DDPM/DDIM schedulers.

Each lives in its own module; import it from there (``from genlab.samplers.langevin import ...``).
"""
