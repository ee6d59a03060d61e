"""The textbook's table of generative families: its rows, in its order, and the words it gives each
row for density, sampling and training. A family names its row with the class attribute
``taxonomy`` (one of `ROWS`, or None for families the table has no row for: autoencoders and
image-to-image translators); `genlab compare` measures every column and the report sets the
measurement beside these words.

The rows and words are the common summary of the families (as in the overview table of K. P.
Murphy, *Probabilistic Machine Learning: Advanced Topics*, MIT Press 2023, ch. 20: PGM-D, PGM-U,
VAE, ARM, flows, EBM, diffusion, GAN), written here from that summary as genlab's issue 15 states
it, not copied from the book's page; the classic baselines (a Gaussian, a Gaussian mixture, a
kernel density estimate) are added as a first row.

This module imports nothing from genlab, so every layer can read it.
"""
from __future__ import annotations

from dataclasses import dataclass

BASELINE = "baseline"
ROWS: tuple[str, ...] = (BASELINE, "directed graphical model", "undirected graphical model", "VAE",
                         "autoregressive", "flow", "energy-based", "diffusion", "GAN")


@dataclass(frozen=True)
class Words:
    """What the textbook says of one row: ``density`` (exact | approximate | lower bound | none),
    ``sampling`` (fast | slow) and ``training`` (MLE | approximate MLE | MLE of a bound | min-max)."""

    density: str
    sampling: str
    training: str


TEXTBOOK: dict[str, Words] = {
    BASELINE: Words("exact", "fast", "MLE"),
    "directed graphical model": Words("exact", "fast", "MLE"),
    "undirected graphical model": Words("approximate", "slow", "approximate MLE"),
    "VAE": Words("lower bound", "fast", "MLE of a bound"),
    "autoregressive": Words("exact", "slow", "MLE"),
    "flow": Words("exact", "fast", "MLE"),
    "energy-based": Words("approximate", "slow", "approximate MLE"),
    "diffusion": Words("lower bound", "slow", "MLE of a bound"),
    "GAN": Words("none", "fast", "min-max"),
}

# Sampling counts as "fast" at or under this many seconds per 1,000 samples on one CPU thread: a
# 64-sample grid then appears at once and the 2,000 samples of an evaluation take two seconds.
# One network pass per batch is well under it on small data; tens of sequential passes (one per
# pixel, per Gibbs sweep, per denoising step) are over it.
FAST_SECONDS_PER_1000 = 1.0


def check_row(row: str | None, where: str) -> None:
    """Raise a TypeError unless ``row`` is one of `ROWS` or None."""
    if row is not None and row not in ROWS:
        raise TypeError(f"{where}: taxonomy must be one of {', '.join(ROWS)} (or None), got {row!r}")
