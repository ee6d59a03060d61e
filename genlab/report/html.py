"""One self-contained HTML page (images embedded as base64 PNG, a few lines of inline JS to sort
tables): the report of `genlab compare` and of `genlab report RUN`. Readable without a server.
"""
from __future__ import annotations

import base64
import html
import math
from typing import Any, Sequence

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1400px;
color:#1d232a;background:#fff;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde}
.meta{color:#555;font-size:12.5px}table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #d6dae0;padding:4px 7px;text-align:right;vertical-align:top}
th{background:#eef2f7;cursor:pointer;user-select:none;position:sticky;top:0}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td:first-child,th:first-child{text-align:left}tr.floor td{background:#f6f9ee;font-style:italic}
.se{color:#666;font-size:11.5px}.na{color:#8a6d3b;font-size:11.5px;text-align:left;max-width:230px;display:inline-block}
.flag{color:#b00020;font-weight:600}.fig{display:inline-block;margin:6px 10px 6px 0;vertical-align:top}
.fig figcaption{font-size:12px;color:#444;max-width:520px}.family{margin-bottom:18px}
"""

JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
    var asc=!th.classList.contains('sorted-asc');
    t.querySelectorAll('th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc')});
    th.classList.add(asc?'sorted-asc':'sorted-desc');
    var body=t.tBodies[0],rows=Array.from(body.rows).filter(function(r){return !r.classList.contains('floor')});
    var key=function(r){var v=r.cells[i].getAttribute('data-sort');var f=parseFloat(v);return isNaN(f)?v:f};
    rows.sort(function(a,b){var x=key(a),y=key(b);if(x===y)return 0;
      if(typeof x!==typeof y)return (typeof x==='number')?-1:1;return (x<y?-1:1)*(asc?1:-1)});
    rows.forEach(function(r){body.appendChild(r)});});});});
"""


def esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def image(png: bytes, alt: str, caption: str = "", width: int | None = None) -> str:
    """An embedded PNG figure with a caption."""
    src = "data:image/png;base64," + base64.b64encode(png).decode()
    w = f' width="{width}"' if width else ""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure class="fig"><img src="{src}" alt="{esc(alt)}"{w}>{cap}</figure>'


class Cell:
    """A table cell: HTML to show, the key to sort by (numbers sort numerically) and a tooltip."""

    def __init__(self, shown: str, sort: Any = "", title: str = ""):
        self.shown, self.sort, self.title = shown, sort, title


def num(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{v:.3g}"
    return f"{v:.{digits}g}"


def estimate_cell(d: dict | None, why: str | None = None, scale: float = 1.0, digits: int = 4) -> Cell:
    """``value ± stderr`` with n in the tooltip; or the reason it is missing, in the cell."""
    if d is None:
        reason = why or "not computed"
        short = reason if len(reason) <= 140 else reason[:137] + "…"
        return Cell(f'<span class="na">{esc(short)}</span>', "", reason)
    v, se = d.get("value"), d.get("stderr")
    v = None if v is None else v * scale
    se = None if se is None else se * scale
    shown = f'{num(v, digits)} <span class="se">± {num(se, 2)}</span>'
    tip = f"n = {d.get('n')}" + (f", reference n = {d['n_ref']}" if d.get("n_ref") else "")
    return Cell(shown, "" if v is None else v, tip)


def table(columns: Sequence[str], rows: Sequence[Sequence[Cell | str]], floor_rows: int = 0,
          notes: Sequence[str] = ()) -> str:
    """A sortable table; the first ``floor_rows`` rows stay on top (reference rows)."""
    head = "".join(f'<th title="{esc(n)}">{esc(c)}</th>' for c, n in
                   zip(columns, list(notes) + [""] * (len(columns) - len(notes))))
    body = []
    for i, r in enumerate(rows):
        tds = []
        for c in r:
            c = c if isinstance(c, Cell) else Cell(esc(c), str(c))
            tds.append(f'<td data-sort="{esc(c.sort)}" title="{esc(c.title)}">{c.shown}</td>')
        cls = ' class="floor"' if i < floor_rows else ""
        body.append(f"<tr{cls}>{''.join(tds)}</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """The whole document: a title, a line of metadata and (heading, HTML) sections."""
    parts = [f"<h2>{esc(h)}</h2>\n{body}" if h else body for h, body in sections]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1><p class=\"meta\">{subtitle}</p>\n"
            + "\n".join(parts) + f"\n<script>{JS}</script></body></html>\n")


def key_value(d: dict[str, Any]) -> str:
    """A small two-column table of settings."""
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in d.items())
    return f"<table><tbody>{rows}</tbody></table>"
