"""Every family with its default settings, as `genlab compare` trains it: on digits and on a 2-D toy.

Question: do the defaults work? For each family: held-out NLL (bits/dim on digits; nats on the toy,
beside the toy's true entropy), classifier-FID beside its real-data floor, precision / recall,
sampling time, training steps and time. The sample grids of each data set are pasted into one
contact sheet, ``bench/results/defaults_DATA.png``, to be looked at.

    python -m bench.defaults                       # digits and moons, every family that models them
    python -m bench.defaults --data digits --families rows --jobs 2

The runs themselves (weights) go to ``--out`` (default ``defaults-out/``, not committed). Quality
figures depend on the steps each family made in its budget: the table gives them, and the load.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from genlab.compare import compare
from genlab.evaluate import EvalSettings

from .common import RESULTS, print_table, write_results
from .toys import ENTROPY


def _v(d: dict | None) -> float | None:
    return None if not d else d.get("value")


def rows_of(res: dict, data: str) -> list[dict]:
    """One row per family of a comparison's results, flat, for the JSON and the printed table."""
    out = []
    for e in res["taxonomy"]["rows"]:
        r = {"data": data, "family": e["family"], "row": e["row"]}
        if "error" in e:
            out.append({**r, "status": e["error"][:120]})
            continue
        t, d, s, q = e.get("training", {}), e["density"], e["sampling"], e["quality"]
        nll = _v(d["bits_per_dim"] if res["is_image"] else d["nll_nats"])
        r.update(status="ok", steps=t.get("steps"), train_s=t.get("seconds"), stop=t.get("stop_reason"),
                 density=d["word"], nll=nll, unit="bits/dim" if res["is_image"] else "nats",
                 sample_s_per_1000=s["seconds_per_1000"], fid=_v(q.get("classifier_fid")),
                 fid_floor=_v((e.get("floor") or {}).get("classifier_fid")), precision=_v(q.get("precision")),
                 recall=_v(q.get("recall")), coverage=_v(q.get("coverage")))
        if not res["is_image"] and ENTROPY.get(data) is not None and nll is not None:
            r.update(entropy=ENTROPY[data], gap=nll - ENTROPY[data])
        out.append(r)
    return out


def contact_sheet(out: Path, families: list[str], path: Path) -> None:
    """The families' samples.png side by side (4 per row), each titled, in one PNG."""
    from PIL import Image, ImageDraw

    tiles = []
    for fam in families:
        png = out / "runs" / fam / "samples.png"
        if png.is_file():
            im = Image.open(png).convert("RGB")
            im.thumbnail((360, 360))
            canvas = Image.new("RGB", (im.width, im.height + 22), "white")
            canvas.paste(im, (0, 22))
            ImageDraw.Draw(canvas).text((6, 4), fam, fill="black")
            tiles.append(canvas)
    if not tiles:
        return
    w, h, cols = max(t.width for t in tiles), max(t.height for t in tiles), 4
    sheet = Image.new("RGB", (cols * w, -(-len(tiles) // cols) * h), "white")
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * w, (i // cols) * h))
    sheet.save(path, optimize=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="digits,moons", help="comma-separated data sets (default digits,moons)")
    p.add_argument("--families", default="all", help="all | rows | comma-separated names (default all)")
    p.add_argument("--jobs", type=int, default=None, help="families trained at once (default: CPUs)")
    p.add_argument("--n", type=int, default=None, help="examples (toys: generated; default digits all, toys 20000)")
    p.add_argument("--out", default="defaults-out", help="folder of the runs (default defaults-out/)")
    a = p.parse_args(argv)
    families = a.families if a.families in ("all", "rows") else a.families.split(",")
    for data in a.data.split(","):
        n = a.n or (None if data not in ENTROPY else 20000)
        load = os.getloadavg()[0]
        out = Path(a.out) / data
        res = compare(data, families, seed=0, out=out, n=n, jobs=a.jobs,
                      settings=EvalSettings(fid_min_examples=180, seed=0))
        rows = [{**r, "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
                 "total_s": round(res["total_seconds"], 1)} for r in rows_of(res, data)]
        print(f"\n{data}: {res['total_seconds']:.0f} s, {res['machine']}, load {load:.2f} -> {os.getloadavg()[0]:.2f}")
        print_table(rows, ["family", "row", "status", "steps", "train_s", "nll", "gap", "fid", "fid_floor",
                           "recall", "precision", "sample_s_per_1000"])
        write_results("defaults", rows, "python -m bench.defaults " + " ".join(sys.argv[1:] if argv is None else argv),
                      key=("data", "family"))
        contact_sheet(out, [r["family"] for r in rows], RESULTS / f"defaults_{data}.png")


if __name__ == "__main__":
    main()
