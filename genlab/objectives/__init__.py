"""Losses that are not one model's private business: ELBO pieces, likelihoods, GAN losses."""
from .elbo import (bernoulli_log_lik, discretized_logistic_log_lik, elbo, gaussian_kl,
                   gaussian_log_lik, normal_log_prob, reparameterize, sum_event)
from .gan import critic_loss_ns, generator_loss_ns

__all__ = ["bernoulli_log_lik", "discretized_logistic_log_lik", "elbo", "gaussian_kl",
           "gaussian_log_lik", "normal_log_prob", "reparameterize", "sum_event",
           "critic_loss_ns", "generator_loss_ns"]
