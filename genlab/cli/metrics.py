"""``genlab metrics``: every figure ``genlab eval`` can report, with its unit and what it means, and
the names ``--metrics`` accepts to compute only some of them.

A figure belongs to a *row* of the evaluation's metric table (`genlab.evaluate.METRICS`): the
``nll`` row reports ``nll_nats``, ``bits_per_dim`` and, for text, ``perplexity`` and
``bits_per_char``; the ``precision`` row reports precision, recall, density and coverage. ``--metrics`` takes row names, figure names or the short names in `ALIASES`,
and computes the rows they belong to (with the sampling row when a sample metric needs its
samples). This module imports nothing heavy, so ``genlab metrics`` answers at once; a test keeps
it in step with the metric table.
"""
from __future__ import annotations

import argparse
from typing import NamedTuple


class Figure(NamedTuple):
    """One reported figure: its row of the metric table, unit, and meaning."""

    row: str
    unit: str
    meaning: str


FIGURES: dict[str, Figure] = {
    "nll_nats": Figure("nll", "nats per example", "held-out negative log-likelihood (an upper bound for "
                       "bound densities and dequantized discrete data); lower is better"),
    "bits_per_dim": Figure("nll", "bits per dimension", "nll_nats / (D ln 2): comparable across data sizes"),
    "nll_is": Figure("nll", "-", "whether the NLL is exact, an upper bound or an estimate"),
    "nll_given_label_nats": Figure("nll", "nats per example", "-log p(x | y) of a conditional model, "
                                   "beside (never instead of) the unconditional NLL"),
    "perplexity": Figure("nll", "characters", "text: exp(NLL per character), the effective number of "
                         "equally likely next characters; lower is better"),
    "bits_per_char": Figure("nll", "bits per character", "text: NLL per character / ln 2, the unit of "
                            "text compressors"),
    "log_partition": Figure("nll", "nats", "energy models: log Z (enumerated, integrated or by AIS)"),
    "examples_outside_support": Figure("nll", "examples", "energy models: held-out examples the model "
                                       "gives zero probability"),
    "ais_nll_nats": Figure("ais", "nats per example", "latent-variable models: NLL by annealed "
                           "importance sampling over codes (--ais-steps N), tighter than the ELBO"),
    "ais_bits_per_dim": Figure("ais", "bits per dimension", "ais_nll_nats / (D ln 2)"),
    "sampling_speed": Figure("sampling_speed", "samples/s", "samples drawn per second (the samples feed "
                             "the sample metrics)"),
    "mmd": Figure("mmd", "squared MMD", "kernel two-sample distance of generated and training "
                  "features (0 for the same distribution); lower is better"),
    "precision": Figure("precision", "fraction", "share of samples inside the k-NN manifold of the "
                        "training data (fidelity)"),
    "recall": Figure("precision", "fraction", "share of held-out data inside the samples' manifold (diversity)"),
    "density": Figure("precision", "ratio", "how many training neighbourhoods hold a sample, per k (1 "
                      "for the data itself)"),
    "coverage": Figure("precision", "fraction", "share of training neighbourhoods that hold a sample"),
    "classifier_fid": Figure("classifier_fid", "squared feature distance", "Fréchet distance in the "
                             "features of a classifier trained on the data (not Inception-FID); lower is "
                             "better; beside it the real-vs-held-out floor"),
    "memorization": Figure("memorization", "ratio, fraction", "distance of samples to their nearest "
                           "training example over the same for held-out data, and the share of near-copies"),
    "conditional_accuracy": Figure("conditional_accuracy", "fraction", "conditional models: how often "
                                   "the classifier recognises the asked class in a sample"),
    "reconstruction_rmse": Figure("reconstruction_rmse", "data units", "latent models: root mean "
                                  "squared error of decode(encode(x))"),
}

ALIASES = {"fid": "classifier_fid", "likelihood": "nll", "speed": "sampling_speed", "pr": "precision,recall",
           "dc": "density,coverage", "reconstruction": "reconstruction_rmse", "ppl": "perplexity",
           "bpc": "bits_per_char", "bpd": "bits_per_dim"}


def rows() -> list[str]:
    """The rows of the metric table, in the order they are computed."""
    return list(dict.fromkeys(f.row for f in FIGURES.values()))


def metric_rows(text: str) -> str:
    """``--metrics`` words (rows, figures, aliases; comma-separated) -> the rows they belong to,
    comma-separated, in table order; ``""`` / ``"all"`` stay as they are (every row).

    Raises:
        ValueError: a word that names no metric (the message lists the names).
    """
    words = [w.strip().lower().replace("-", "_") for w in text.split(",") if w.strip()]
    if not words or words == ["all"]:
        return "all"
    words = [x for w in words for x in ALIASES.get(w, w).split(",")]
    unknown = [w for w in words if w not in FIGURES and w not in rows()]
    if unknown:
        raise ValueError(f"--metrics: unknown metric {', '.join(map(repr, unknown))}; `genlab metrics` lists "
                         f"them (rows: {', '.join(rows())}; short names: {', '.join(ALIASES)})")
    wanted = {FIGURES[w].row if w in FIGURES else w for w in words}
    return ",".join(r for r in rows() if r in wanted)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``metrics`` to the sub-command parsers ``sub``."""
    mp = sub.add_parser("metrics", help="the metrics `genlab eval` reports: names, units, meanings",
                        description="List every figure `genlab eval` can report: its row of the metric table "
                                    "(what --metrics picks), unit and meaning. Which ones a run gets depends on "
                                    "its family's capabilities; `genlab eval` says why any is missing.")
    mp.set_defaults(handler=cmd_metrics)


def cmd_metrics(args: argparse.Namespace) -> int:
    """Print the figures of `genlab eval`, grouped by row."""
    width = max(map(len, FIGURES))
    for row in rows():
        print(f"{row}:")
        for name, f in FIGURES.items():
            if f.row == row:
                print(f"  {name:<{width}}  [{f.unit}] {f.meaning}")
    print("\npick rows with `genlab eval RUN --metrics nll,fid` (rows, figure names or short names: "
          + ", ".join(f"{k}={v}" for k, v in ALIASES.items()) + "); sample metrics also draw the samples")
    return 0
