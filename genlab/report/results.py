"""Pages built from `genlab.evaluate` results: the family table of `genlab compare` and the
report of one run. Each family's row says, in the cell, why a column could not be measured."""
from __future__ import annotations

from typing import Any, Sequence

from .html import Cell, esc, estimate_cell, image, key_value, num, page, table
from .taxonomy import taxonomy_section

COLUMNS = ["family", "density", "test NLL or bound", "classifier-FID ↓", "precision ↑", "recall ↑",
           "density ↑", "coverage ↑", "MMD² ↓", "memorization: distance ratio", "near-copies",
           "sampling (samples/s)", "training (s)", "parameters", "stopped"]
NOTES = ["", "what log_prob returns: exact, bound (ELBO; upper bound on NLL), unnormalized, none",
         "held-out negative log-likelihood (bits/dim for images, nats per example otherwise); "
         "an upper bound for bounds and dequantized discrete data",
         "Fréchet distance on features of genlab's own classifier for this data set (not Inception): "
         "compare only within this table; the italic row is real held-out data (the floor)",
         "share of samples inside the k-NN manifold of the training data (Kynkäänniemi et al. 2019)",
         "share of training examples inside the k-NN manifold of the samples",
         "Naeem et al. 2020: about 1 for samples like the data", "Naeem et al. 2020: share of real k-NN balls hit",
         "unbiased MMD² with a sum of Gaussian kernels (several bandwidths)",
         "median distance to the nearest training example, over the same for held-out data (1: like fresh data; <1: closer to the training set than new data are)",
         "share of samples closer to the training set than 99% of held-out data (fresh data: 0.01)",
         "samples per second on one CPU thread of this machine (evaluation runs single-threaded)", "wall-clock training time", "numbers stored by the fitted model: parameters and fitted buffers",
         "why training stopped"]


def _metric(ev: dict, key: str, source: str = "metrics") -> tuple[dict | None, str | None]:
    d = ev.get(source, {}).get(key)
    nc = ev.get("not_computed", {})
    return d, None if d is not None else nc.get(key, nc.get("nll" if key in ("nll_nats", "bits_per_dim") else key,
                                                             "not computed"))


def _cut(cell: Cell, ev: dict, key: str) -> Cell:
    """Mark ``cell`` when eval's time cap cut the metric ``key`` (its reason in the tooltip)."""
    names = {"nll_nats": "nll", "bits_per_dim": "nll"}.get(key, key)
    why = next((w for k, w in (ev.get("cut") or {}).items() if names in k.split("/")), None)
    if why:
        cell.shown += f' <span class="flag" title="{esc(why)}">cut</span>'
    return cell


def row(label: str, ev: dict | None, train: dict | None, is_image: bool, failure: str | None = None) -> list[Cell]:
    """One family's cells from its evaluation ``ev`` and training record ``train``."""
    if ev is None:
        why = failure or "not evaluated"
        return [Cell(esc(label), label)] + [estimate_cell(None, why) for _ in COLUMNS[1:]]
    cells = [Cell(f"<b>{esc(label)}</b>", label), Cell(esc(ev["density"]), ev["density"])]
    key = "bits_per_dim" if is_image else "nll_nats"
    d, why = _metric(ev, key)
    c = estimate_cell(d, why)
    if d is not None:
        c.shown += f' <span class="se">{"bits/dim" if is_image else "nats"}, {esc(ev["metrics"].get("nll_is", ""))}</span>'
    cells.append(_cut(c, ev, key))
    for k in ("classifier_fid", "precision", "recall", "density", "coverage", "mmd"):
        cells.append(_cut(estimate_cell(*_metric(ev, k)), ev, k))
    mem, why = _metric(ev, "memorization")
    if mem is None:
        cells += [estimate_cell(None, why), estimate_cell(None, why)]
    else:
        c = estimate_cell(mem["distance_ratio"])
        if mem["flagged"]:
            c.shown += ' <span class="flag" title="{}">MEMORIZES</span>'.format(esc(mem.get("rule", "")))
        cells += [c, estimate_cell(mem["near_copy_share"])]
    cells.append(_cut(estimate_cell(*_metric(ev, "sampling_speed"), digits=3), ev, "sampling_speed"))
    t = train or {}
    cells.append(Cell(num(t.get("seconds"), 3), t.get("seconds", "")))
    cells.append(Cell(f"{ev['parameters']:,}", ev["parameters"]))
    cells.append(Cell(esc(t.get("stop_reason", "")), t.get("stop_reason", "")))
    return cells


def floor_row(ev: dict) -> list[Cell]:
    """The real-vs-held-out reference row: held-out data scored like a model's samples."""
    fl = ev.get("floor", {})
    cells = [Cell("held-out data (floor)", ""), Cell("", ""), Cell("", "")]
    for k in ("classifier_fid", "precision", "recall", "density", "coverage", "mmd"):
        d = fl.get(k)
        cells.append(estimate_cell(d, ev.get("not_computed", {}).get(k, "")) if d else Cell("", ""))
    q = ev.get("metrics", {}).get("memorization", {}).get("quantile", 0.01)
    cells += [Cell("1 (by definition)", 1), Cell(f"≈ {q:g}", q)] + [Cell("", "") for _ in range(4)]
    return cells


def _extras(ev: dict) -> str:
    """Secondary figures (reconstruction, conditional accuracy) and the list of what was not computed."""
    out = []
    for k in ("reconstruction_rmse", "conditional_accuracy"):
        d = ev.get("metrics", {}).get(k)
        if d:
            out.append(f"<li>{esc(k)}: {num(d['value'])} ± {num(d['stderr'], 2)} (n = {d['n']})</li>")
    for k, why in ev.get("not_computed", {}).items():
        out.append(f"<li><i>{esc(k)}</i> not computed: {esc(why)}</li>")
    note = ev.get("metrics", {}).get("sampling_speed", {}).get("note")
    if note:
        out.append(f"<li>sampling: {esc(note)}</li>")
    return f"<ul>{''.join(out)}</ul>" if out else ""


def family_section(label: str, ev: dict | None, figures: dict[str, tuple[bytes, str] | str]) -> str:
    """Figures of one family (sample grid, loss curves, interpolation), each or the reason it is absent."""
    parts = []
    for name, fig in figures.items():
        if isinstance(fig, tuple):
            parts.append(image(fig[0], f"{label} {name}", fig[1]))
        else:
            parts.append(f'<p class="na">{esc(name)}: {esc(fig)}</p>')
    return f'<div class="family"><h3>{esc(label)}</h3>{"".join(parts)}{_extras(ev) if ev else ""}</div>'


def features_note(ev: dict) -> str:
    f = ev.get("features", {})
    if f.get("kind") == "classifier":
        c = f["classifier"]
        acc = c.get("val_accuracy")
        kept = f"cached at {esc(c['path'])}" if c.get("path") else "not cached"
        return (f"Sample metrics use the {c['features']}-d penultimate features of genlab's classifier for this data set "
                f"(trained on {c['n_train']} training examples; held-out accuracy "
                f"{'–' if acc is None else f'{acc:.3f}'}; {kept}). ")
    return f"Sample metrics use the standardized examples themselves ({esc(f.get('why', ''))}). "


def compare_page(results: dict[str, Any], sections: Sequence[tuple[str, str]]) -> str:
    """The `genlab compare` report: the family table with the floor row, then ``sections``."""
    fams = results["families"]
    is_image = results["is_image"]
    rows, floor = [], None
    for f in fams:
        ev = f.get("eval")
        if floor is None and ev and ev.get("floor"):
            floor = floor_row(ev)
        rows.append(row(f["family"], ev, f.get("train"), is_image, f.get("error")))
    rows = ([floor] if floor else []) + rows
    any_ev = next((f["eval"] for f in fams if f.get("eval")), {})
    n = any_ev.get("metrics", {}).get("sampling_speed", {}).get("n")
    budget = results.get("budget_minutes")
    budget = (f"the same budget of {budget:g} minutes" if budget else
              "its own training budget (the 'training (s)' column; early stopping and closed forms end sooner)")
    intro = (f"<p>Each family trained on <b>{esc(results['data'])}</b> with the same seed ({results['seed']}) and "
             f"{budget}; test split of {results['n_test']} examples, "
             f"training split of {results['n_train']}. Sample metrics compare {n or '–'} samples with the training "
             f"set; the italic first row scores as many real held-out examples the same way (the best a model can "
             f"expect at this n). Values are ± one standard error; hover a cell for the numbers of examples. "
             f"Click a column header to sort. {features_note(any_ev)}</p>")
    body = [("", intro)]
    if results.get("taxonomy"):
        body.append(("The taxonomy table, measured", taxonomy_section(results["taxonomy"], is_image)))
    body.append(("Family table: every metric", table(COLUMNS, rows, floor_rows=1 if floor else 0, notes=NOTES)))
    sub = (f"genlab compare · {esc(results['date'])} · {esc(results['machine'])} · "
           f"total {results['total_seconds']:.0f} s")
    return page(f"genlab compare: {results['data']}", sub, body + list(sections))


def run_page(ev: dict, info: dict[str, Any], figures: dict[str, tuple[bytes, str] | str]) -> str:
    """The report of one run: its settings, its row (with the floor) and its figures."""
    is_image = len(info.get("spec", {}).get("event_shape", [])) == 3
    rows = [floor_row(ev), row(ev["family"], ev, info.get("train"), is_image)]
    sub = f"genlab report · {esc(info.get('run', ''))}"
    body = [("", f"<p>{features_note(ev)}Values are ± one standard error; hover a cell for n.</p>"),
            ("Metrics", table(COLUMNS, rows, floor_rows=1, notes=NOTES)),
            ("Figures", family_section(ev["family"], ev, figures)),
            ("Settings", key_value({"family": ev["family"], "data": ev["data"], **info.get("config", {}),
                                    **{f"trainer.{k}": v for k, v in info.get("trainer", {}).items()}}))]
    return page(f"genlab run: {ev['family']} on {ev['data']}", sub, body)
