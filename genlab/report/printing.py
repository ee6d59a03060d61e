"""The result printer: an evaluation (`genlab.evaluate`) as lines of text for a terminal."""
from __future__ import annotations

import sys
from typing import Any, TextIO

# how the printer names a metric key and the unit it appends; keys not listed print as they are
_NAMES = {"classifier_fid": "classifier-FID"}
_UNITS = {"nll_nats": " nats", "bits_per_dim": " bits/dim", "bits_per_char": " bits/char", "sampling_speed": " samples/s"}


def _se(d: dict[str, Any]) -> float:
    return d.get("stderr") if d.get("stderr") is not None else float("nan")


def _what_was_cut(why: str) -> str:
    """The start of each reason of a cut (``64 of 180 examples``), without the measured why."""
    return "; ".join(part.split(": ")[0] for part in why.split("; "))


def eval_lines(result: dict[str, Any]) -> list[str]:
    """The lines `print_eval` prints: a heading, one line per metric (value ± standard error, n,
    and the held-out-data floor where there is one), the metrics the time cap cut (what was cut),
    then what was not computed and why."""
    lines = [f"{result['family']} on {result['data']} (density {result['density']}, "
             f"{result['parameters']:,} parameters)"]
    floor = result.get("floor", {})
    for k, v in result["metrics"].items():
        if isinstance(v, str):
            continue
        if isinstance(v, int):
            lines.append(f"  {k}: {v}")
        elif k == "log_partition":
            steps = f", {v['steps']} steps" if "steps" in v else ""
            se = f" ± {v['stderr']:.2g} ({v['n']} chains{steps})" if v["method"] == "ais" else ""
            lines.append(f"  log Z ({v['method']}): {v['value']:.4g}{se}")
        elif k == "memorization":
            flag = "  ** MEMORIZES: samples copy the training set **" if v["flagged"] else ""
            lines.append(f"  memorization: distance ratio {v['distance_ratio']['value']:.3f} ± "
                         f"{v['distance_ratio']['stderr']:.3f}, near-copies {v['near_copy_share']['value']:.3f} "
                         f"(fresh data: {v['quantile']:g}){flag}")
        else:
            name = f"NLL ({result['metrics'].get('nll_is')})" if k == "nll_nats" else _NAMES.get(k, k)
            line = f"  {name}: {v['value']:.4g} ± {_se(v):.2g}{_UNITS.get(k, '')} (n={v['n']})"
            if k in floor:
                line += f"   [held-out data: {floor[k]['value']:.4g} ± {_se(floor[k]):.2g}]"
            lines.append(line)
    cut = result.get("cut", {})
    lines += [f"  cut by the time cap (--metric-seconds): {k}: {_what_was_cut(why)}" for k, why in cut.items()]
    lines += [f"  not computed: {k}: {why}" for k, why in result["not_computed"].items()]
    return lines


def print_eval(result: dict[str, Any], file: TextIO | None = None) -> None:
    """Print an evaluation result (the dictionary `genlab.evaluate.evaluate` returns).

    Args:
        result: the evaluation, as written to eval.json.
        file: where to print (default: standard output).
    """
    print("\n".join(eval_lines(result)), file=file or sys.stdout)
