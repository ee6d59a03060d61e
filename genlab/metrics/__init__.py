"""Metrics: pure functions of tensors or of a model and data, returning numbers in nats unless the
name says bits, with their standard error where one exists (`Estimate`: value, stderr, n).

One namespace, named as ``genlab eval``'s result keys:

* ``nll(model, x)`` -> ``nll_nats`` (mean -log p(x) per example; an upper bound for bound families);
  ``bits_per_dim(nll, dim)`` -> ``bits_per_dim``; ``log_likelihoods(model, x)`` per example.
* ``elbo(model, x)``, ``iwae(model, x, k)``: variational bounds on log p(x) (higher is better);
  ``ais(model, x)`` -> ``ais_nll_nats`` (AIS over a latent-variable model's codes).
* ``perplexity(nll_per_token)``: exp of the NLL per token (text).
* ``kl(x, log_p, log_q)``: Monte-Carlo KL(p || q) from samples of p.
* two-sample figures of feature sets ``(n, d)``: ``mmd(x, y)`` -> ``mmd``, ``fid(real, fake)`` ->
  ``classifier_fid`` (on classifier features in ``genlab eval``), ``precision_recall(real, fake)``
  -> ``precision``, ``recall``; ``density_coverage(real, fake)`` -> ``density``, ``coverage``;
  ``memorization(generated, train, test)`` -> ``memorization``.
"""
from .api import ais, bits_per_token, elbo, iwae, kl, perplexity
from .fid import fid
from .likelihood import Estimate, bits_per_dim, log_likelihoods, mean_se, nll
from .memorization import memorization
from .samples import density_coverage, mmd, precision_recall

__all__ = ["Estimate", "ais", "bits_per_dim", "bits_per_token", "density_coverage", "elbo", "fid", "iwae", "kl",
           "log_likelihoods", "mean_se", "memorization", "mmd", "nll", "perplexity", "precision_recall"]
