"""Text figures: perplexity and bits per character (pure functions of a mean NLL).

For a character-level model the NLL per token is the NLL per character; for coarser tokens
pass ``chars_per_token`` (characters of text per token, averaged over the evaluated text).
`text_figures` gives both from the mean NLL per example (what `genlab eval` reports for text).
"""
from __future__ import annotations

import math
from typing import Any

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


def text_figures(nll_nats: Estimate, chars: int) -> dict[str, Any]:
    """Perplexity and bits per character of a character-level model, from its mean NLL per
    example of ``chars`` characters (nats), each with its standard error (perplexity's by the delta
    method: ``se(exp(m)) ~= exp(m) se(m)``)."""
    if chars < 1:
        raise ValueError(f"text_figures: an example must hold at least one character, got {chars}")
    per_char = Estimate(nll_nats.value / chars, nll_nats.stderr / chars, nll_nats.n)
    ppl = perplexity(per_char.value)
    return {"perplexity": Estimate(ppl, ppl * per_char.stderr, per_char.n).to_dict(),
            "bits_per_char": bits_per_char(per_char).to_dict()}
