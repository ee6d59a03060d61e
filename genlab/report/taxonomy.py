"""The textbook's table of generative families, measured: one row per family of a `genlab compare`,
the columns as the textbook has them (density, sampling, training) and each cell read off the
evaluation, beside the textbook's word for the family's row (`genlab.taxonomy.TEXTBOOK`). A cell
whose measurement disagrees with the textbook's word is listed under the table with the numbers.

`measured_table` builds the rows as plain data (they go into results.json); `taxonomy_section`
draws them as HTML.
"""
from __future__ import annotations

import math
from typing import Any

from ..taxonomy import FAST_SECONDS_PER_1000, TEXTBOOK
from .html import Cell, esc, estimate_cell, num, table

_DENSITY_WORD = {"exact": "exact", "bound": "lower bound", "unnormalized": "approximate", "none": "none"}
_LOG_Z_WORD = {"exact": "exact", "quadrature": "exact", "ais": "approximate"}
_LOG_Z_HOW = {"exact": "log Z by enumeration", "quadrature": "log Z by quadrature", "ais": "log Z by AIS"}


def _value(d: dict | None) -> float | None:
    return None if d is None else d.get("value")


def measured_density(ev: dict) -> dict[str, Any]:
    """The density column of one evaluation: the word (exact | lower bound | approximate | none),
    how it was obtained, and the held-out NLL in nats and bits/dim (None when not computed)."""
    m, why = ev.get("metrics", {}), ev.get("not_computed", {}).get("nll")
    word, how = _DENSITY_WORD.get(ev.get("density", "none"), ev.get("density")), ev.get("density")
    log_z = m.get("log_partition")
    if log_z is not None:  # an energy model whose log Z was computed: how decides the word
        word, how = _LOG_Z_WORD.get(log_z["method"], "approximate"), _LOG_Z_HOW.get(log_z["method"], log_z["method"])
    elif ev.get("density") == "bound":
        how = "ELBO-type bound (NLL is an upper bound)"
    return {"word": word, "how": how, "nll_nats": m.get("nll_nats"), "bits_per_dim": m.get("bits_per_dim"),
            "why_no_nll": why if "nll_nats" not in m else None}


def measured_sampling(ev: dict) -> dict[str, Any]:
    """The sampling column: seconds per 1,000 samples on one thread and the word read off it."""
    d = ev.get("metrics", {}).get("sampling_speed")
    rate = _value(d)
    if not rate:
        return {"word": None, "seconds_per_1000": None,
                "why": ev.get("not_computed", {}).get("sampling_speed", "not measured")}
    sec = 1000.0 / rate
    return {"word": "fast" if sec <= FAST_SECONDS_PER_1000 else "slow", "seconds_per_1000": sec,
            "how": d.get("note", "")}


def _disagreements(family: str, row: str, density: dict, sampling: dict) -> list[str]:
    book = TEXTBOOK[row]
    out = []
    if density["word"] != book.density and not (density["word"] == "none" and density["why_no_nll"]):
        out.append(f"{family} ({row}): density measured {density['word']} ({density['how']}) where the textbook "
                   f"says {book.density}")
    if sampling["word"] and sampling["word"] != book.sampling:
        out.append(f"{family} ({row}): sampling measured {sampling['word']} ({num(sampling['seconds_per_1000'], 3)} s "
                   f"per 1,000 samples on one thread; fast means at most {FAST_SECONDS_PER_1000:g} s) where the "
                   f"textbook says {book.sampling}")
    return out


COLLAPSED_RECALL = 0.05  # recall below this, where real held-out data scores far higher: samples miss the data


def _below_baselines(rows: list[dict[str, Any]], spec: dict[str, Any] | None) -> list[str]:
    """Families that ended worse than a model with no training worth the name: a held-out NLL above
    the `gaussian` family's (when compared) or above uniform levels (discrete data), and samples
    whose recall says they collapsed onto a small part of the data."""
    def nll(e: dict) -> float | None:
        return _value((e.get("density") or {}).get("nll_nats"))
    refs = []
    gauss = next((nll(e) for e in rows if e["family"] == "gaussian" and nll(e) is not None), None)
    if gauss is not None:
        refs.append(("the gaussian baseline", gauss))
    if spec and spec.get("levels") and spec.get("kind") in ("discrete", "binary"):
        dim = 1
        for d in spec.get("event_shape", []):
            dim *= d
        refs.append((f"uniform levels ({spec['levels']} per dimension)", dim * math.log(spec["levels"])))
    out = []
    for e in rows:
        v = nll(e)
        for name, ref in refs:
            if v is not None and e["family"] != "gaussian" and v > ref:
                out.append(f"{e['family']} is below the trivial baseline: held-out NLL {num(v, 4)} nats, worse "
                           f"than {name} ({num(ref, 4)} nats); it needs more training or other settings")
                break
        recall, floor = _value((e.get("quality") or {}).get("recall")), _value((e.get("floor") or {}).get("recall"))
        if recall is not None and recall < COLLAPSED_RECALL and (floor is None or floor > 4 * COLLAPSED_RECALL):
            out.append(f"{e['family']}'s samples collapsed: recall {num(recall, 3)}"
                       + (f" where real held-out data gets {num(floor, 3)}" if floor is not None else "")
                       + " (they cover almost none of the data)")
    return out


def measured_table(results: dict[str, Any]) -> dict[str, Any]:
    """The measured taxonomy table of a `genlab compare` results dictionary: ``rows`` (one per
    family, in the order of the comparison) and ``disagreements`` (sentences)."""
    rows, notes = [], []
    for f in results["families"]:
        fam, row = f["family"], f.get("taxonomy")
        book = TEXTBOOK.get(row)
        entry: dict[str, Any] = {"family": fam, "row": row or "not in the table",
                                 "textbook": None if book is None else vars(book),
                                 "training": {"objective": f.get("training_words"), **(f.get("train") or {})}}
        ev = f.get("eval")
        if ev is None:
            entry["error"] = f.get("error", "not evaluated")
            rows.append(entry)
            continue
        m, floor = ev.get("metrics", {}), ev.get("floor", {})
        entry["density"], entry["sampling"] = measured_density(ev), measured_sampling(ev)
        entry["quality"] = {k: m.get(k) for k in ("classifier_fid", "precision", "recall", "density", "coverage")}
        entry["floor"] = {k: floor.get(k) for k in ("classifier_fid", "precision", "recall")}
        entry["memorization"] = m.get("memorization")
        if book is not None:
            notes += _disagreements(fam, row, entry["density"], entry["sampling"])
        rows.append(entry)
    codecs = (results.get("references") or {}).get("codecs_bits_per_dim") or {}
    if codecs:
        best, bits = min(codecs.items(), key=lambda kv: kv[1])
        worse = [f"{e['family']} ({num(e['density']['bits_per_dim']['value'], 4)})" for e in rows
                 if e.get("density") and e["density"]["bits_per_dim"] and e["density"]["bits_per_dim"]["value"] > bits]
        if worse:
            notes.append(f"held-out bits/dim above the best lossless codec without a model ({best}, "
                         f"{num(bits, 4)} bits/dim): {', '.join(worse)}")
    return {"rows": rows, "disagreements": notes, "below_baseline": _below_baselines(rows, results.get("spec")),
            "fast_seconds_per_1000": FAST_SECONDS_PER_1000, "codecs_bits_per_dim": codecs}


COLUMNS = ["row of the table", "family", "density: textbook", "density: measured", "held-out NLL",
           "sampling: textbook", "sampling: measured (s / 1,000)", "training: textbook", "training: objective",
           "steps", "training (s)", "classifier-FID ↓ (floor)", "precision ↑", "recall ↑", "density ↑",
           "coverage ↑", "memorization: distance ratio"]
NOTES = ["the textbook's row", "", "the textbook's word for the row", "read off the evaluation: how log p(x) was "
         "obtained", "nats per example and bits/dim on the test split (a bound where the density is a bound)",
         "", f"seconds to draw 1,000 samples on one thread; fast: at most {FAST_SECONDS_PER_1000:g} s", "",
         "the family's own objective", "optimizer steps made", "wall-clock training time",
         "Fréchet distance of classifier features; in brackets real held-out data scored the same way",
         "", "", "Naeem et al. 2020", "", "median distance to the nearest training example over the same for "
         "held-out data (1: like fresh data)"]


def _mark(shown: str, agrees: bool | None) -> str:
    return shown if agrees is not False else f'<span class="flag" title="disagrees with the textbook">{shown}</span>'


def _cells(e: dict[str, Any], bits: bool) -> list[Cell]:
    book = e.get("textbook") or {}
    t = e.get("training", {})
    head = [Cell(esc(e["row"]), e["row"]), Cell(f"<b>{esc(e['family'])}</b>", e["family"]),
            Cell(esc(book.get("density", "")), book.get("density", ""))]
    if "error" in e:
        why = estimate_cell(None, e["error"])
        return head + [why] + [Cell("", "") for _ in COLUMNS[4:]]
    d, s = e["density"], e["sampling"]
    nll = estimate_cell(d["nll_nats"], d["why_no_nll"])
    if d["nll_nats"] is not None and d["bits_per_dim"] is not None:
        nll.shown += f' <span class="se">nats; {num(d["bits_per_dim"]["value"], 4)} bits/dim</span>'
        if bits:
            nll.sort = d["bits_per_dim"]["value"]
    sec = s["seconds_per_1000"]
    samp = Cell(_mark(f"{esc(s['word'])} ({num(sec, 3)})", None if not book else s["word"] == book.get("sampling")),
                "" if sec is None else sec, s.get("how", "")) if sec is not None else estimate_cell(None, s.get("why"))
    fid, fl = e["quality"].get("classifier_fid"), (e.get("floor") or {}).get("classifier_fid")
    fid_cell = estimate_cell(fid, "not computed")
    if fid is not None and fl is not None:
        fid_cell.shown += f' <span class="se">({num(fl["value"], 3)})</span>'
    mem = e.get("memorization")
    mem_cell = Cell("–", "") if not mem else Cell(
        num(mem["distance_ratio"]["value"], 3) + (' <span class="flag">MEMORIZES</span>' if mem.get("flagged") else ""),
        mem["distance_ratio"]["value"])
    agrees_d = None if not book or (d["word"] == "none" and d["why_no_nll"]) else d["word"] == book.get("density")
    return head + [
        Cell(_mark(esc(d["word"]), agrees_d), d["word"], d["how"]), nll,
        Cell(esc(book.get("sampling", "")), book.get("sampling", "")), samp,
        Cell(esc(book.get("training", "")), book.get("training", "")),
        Cell(esc(t.get("objective") or ""), t.get("objective") or ""),
        Cell(esc(t.get("steps", "–")), t.get("steps", "")), Cell(num(t.get("seconds"), 3), t.get("seconds", "")),
        fid_cell] + [estimate_cell(e["quality"].get(k), "not computed") for k in
                     ("precision", "recall", "density", "coverage")] + [mem_cell]


def taxonomy_section(measured: dict[str, Any], is_image: bool) -> str:
    """The measured table as HTML, then the list of cells where the measurement and the textbook
    disagree (or a line saying they agree everywhere)."""
    rows = [_cells(e, is_image) for e in measured["rows"]]
    for codec, bits in (measured.get("codecs_bits_per_dim") or {}).items():
        nll = Cell(f'{num(bits, 4)} <span class="se">bits/dim</span>', bits if is_image else "",
                   "the test split stored as one file by this codec (no model)")
        rows.append([Cell("reference: lossless codec", "~"), Cell(esc(codec), codec), Cell("", ""),
                     Cell("exact", "exact"), nll] + [Cell("", "") for _ in COLUMNS[5:]])
    notes = measured["disagreements"]
    said = ("<p>Where the measurement disagrees with the textbook's word (flagged red in the table), and "
            "where a family stores the test data in more bits than a codec that has no model:</p><ul>"
            + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>") if notes else \
        "<p>Every measured density and sampling cell agrees with the textbook's word.</p>"
    below = measured.get("below_baseline") or []
    if below:
        said += ('<p class="flag">Families that ended below a trivial baseline (their numbers say more '
                 "about their training budget or settings than about their row):</p><ul>"
                 + "".join(f"<li>{esc(n)}</li>" for n in below) + "</ul>")
    intro = ("<p>The textbook's words for each row (the common summary of the families, as in Murphy, "
             "<i>Probabilistic Machine Learning: Advanced Topics</i>, 2023, ch. 20) beside what this run measured. Density: how the held-out log-likelihood "
             "was obtained. Sampling: seconds per 1,000 samples on one CPU thread, read as fast at most "
             f"{FAST_SECONDS_PER_1000:g} s. Training: the family's objective, steps and time.</p>")
    return intro + table(COLUMNS, rows, notes=NOTES) + said
