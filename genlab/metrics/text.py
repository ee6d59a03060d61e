"""Text figures: perplexity and bits per character (pure functions of a mean NLL).

For a character-level model the NLL per token is the NLL per character; for coarser tokens
pass ``chars_per_token`` (characters of text per token, averaged over the evaluated text).
"""
from __future__ import annotations

import math

from ..protocol import Estimate


def perplexity(nll_nats_per_token: float) -> float:
    """``exp(mean NLL per token in nats)``: the effective number of equally likely next tokens.

    A uniform model over V tokens has perplexity V.
    """
    if math.isnan(nll_nats_per_token):
        raise ValueError("perplexity: the NLL is NaN")
    return math.exp(nll_nats_per_token)


def bits_per_char(nll_nats_per_token: Estimate | float, chars_per_token: float = 1.0) -> Estimate | float:
    """``nll / (ln 2 * chars_per_token)``: bits per character, the unit of text compressors.

    Args:
        nll_nats_per_token: mean NLL per token in nats (an `Estimate` keeps its standard error).
        chars_per_token: characters per token (1 for character-level models).
    """
    if not chars_per_token > 0:
        raise ValueError(f"bits_per_char: chars_per_token must be > 0, got {chars_per_token}")
    c = 1.0 / (math.log(2) * chars_per_token)
    if isinstance(nll_nats_per_token, Estimate):
        e = nll_nats_per_token
        return Estimate(e.value * c, e.stderr * c, e.n)
    return nll_nats_per_token * c
