"""Discrete Bayesian networks in the Bayesian Interchange Format (BIF 0.15), read as plain text.

``read_bif(source)`` accepts a path (``.bif`` or ``.bif.gz``), BIF text, or ``bif:NAME`` for a
bundled network: ``asia``, ``sachs`` and ``alarm`` ship with genlab (``genlab/pgm/networks/``,
copied from the MIT-licensed pgmpy 1.1.0 wheel); any other name is looked up among the
``.bif.gz`` files of an installed pgmpy 1.1.0 (``pgmpy/utils/example_models/``) without importing
pgmpy. Probabilities are kept exactly as written (rows that sum to 0.9999999 are not rescaled), so
a network written and read back is the same network.

A `Network` holds, for variable ``i``: ``names[i]``, ``states[i]`` (its state names),
``parents[i]`` (indices of its parents, in the file's order) and ``cpts[i]``, an array of shape
``(*cards of parents, card_i)`` with ``cpts[i][pa..., x] = P(X_i = x | parents = pa)``.
"""
from __future__ import annotations

import gzip
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NETWORK_DIR = Path(__file__).parent / "networks"


@dataclass
class Network:
    """A discrete Bayesian network: names, state names, parent lists and CPTs (see module doc)."""

    names: list[str]
    states: list[list[str]]
    parents: list[list[int]]
    cpts: list[np.ndarray]

    @property
    def cards(self) -> list[int]:
        return [len(s) for s in self.states]

    def edges(self) -> set[tuple[int, int]]:
        """Directed edges ``(parent, child)``."""
        return {(p, i) for i, ps in enumerate(self.parents) for p in ps}

    def check(self) -> "Network":
        """Raise ValueError unless shapes agree, probabilities are in [0, 1] and the graph is acyclic."""
        for i, (ps, t) in enumerate(zip(self.parents, self.cpts)):
            want = tuple(self.cards[p] for p in ps) + (self.cards[i],)
            if t.shape != want:
                raise ValueError(f"BIF: CPT of {self.names[i]!r} has shape {t.shape}, expected {want}")
            if (t < 0).any() or (t > 1 + 1e-6).any() or not np.allclose(t.sum(-1), 1, atol=1e-3):
                raise ValueError(f"BIF: CPT rows of {self.names[i]!r} are not probability vectors")
        topological_order(self.parents)
        return self


def topological_order(parents: list[list[int]]) -> list[int]:
    """Kahn's algorithm; raises ValueError on a cycle."""
    n = len(parents)
    indeg = [len(p) for p in parents]
    children: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    ready = [i for i in range(n) if indeg[i] == 0]
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for c in children[i]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    if len(order) != n:
        raise ValueError("the network's graph has a directed cycle")
    return order


# ------------------------------------------------------------------------------------ reading
_VAR = re.compile(r"variable\s+([^\s{]+)\s*\{")
_TYPE = re.compile(r"type\s+discrete\s*\[\s*(\d+)\s*\]\s*\{(.*?)\}", re.S)
_PROB = re.compile(r"probability\s*\(\s*(.*?)\s*\)\s*\{(.*?)\}", re.S)


def _split(s: str) -> list[str]:
    return [t.strip() for t in s.replace("\n", " ").split(",") if t.strip()]


def _floats(s: str, where: str) -> list[float]:
    try:
        return [float(t) for t in re.split(r"[\s,;]+", s.strip()) if t]
    except ValueError:
        raise ValueError(f"BIF: non-numeric probability in {where}: {s.strip()[:60]!r}") from None


def parse_bif(text: str) -> Network:
    """Parse BIF text into a `Network` (raises ValueError naming the offending block)."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    names, states = [], []
    for m in _VAR.finditer(text):
        depth, end = 1, m.end()
        while depth and end < len(text):  # the block ends at its matching brace
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        t = _TYPE.search(text[m.end():end])
        if t is None:
            raise ValueError(f"BIF: variable {m.group(1)!r} is not 'type discrete [ k ] {{ ... }}'")
        st = _split(t.group(2))
        if len(st) != int(t.group(1)):
            raise ValueError(f"BIF: variable {m.group(1)!r} declares {t.group(1)} states but lists {len(st)}")
        names.append(m.group(1))
        states.append(st)
    if not names:
        raise ValueError("BIF: no 'variable' blocks found; is this a BIF file?")
    index = {n: i for i, n in enumerate(names)}
    parents: list[list[int] | None] = [None] * len(names)
    cpts: list[np.ndarray | None] = [None] * len(names)
    for m in _PROB.finditer(text):
        head = m.group(1)
        child, _, rest = head.partition("|")
        child = child.strip()
        if child not in index:
            raise ValueError(f"BIF: probability block for undeclared variable {child!r}")
        i = index[child]
        pnames = _split(rest)
        for p in pnames:
            if p not in index:
                raise ValueError(f"BIF: {child!r} has undeclared parent {p!r}")
        ps = [index[p] for p in pnames]
        shape = tuple(len(states[p]) for p in ps) + (len(states[i]),)
        cpt = np.full(shape, np.nan)
        body = m.group(2)
        for line in body.split(";"):
            line = line.strip()
            if not line:
                continue
            if line.startswith("table"):  # child state slowest, then parents (last fastest)
                vals = _floats(line[5:], child)
                if len(vals) != cpt.size:
                    raise ValueError(f"BIF: table of {child!r} has {len(vals)} values, expected {cpt.size}")
                a = np.asarray(vals).reshape((shape[-1],) + shape[:-1])
                cpt = np.moveaxis(a, 0, -1).copy()
                continue
            row = re.match(r"\((.*?)\)(.*)", line, re.S)
            if row is None:
                raise ValueError(f"BIF: cannot read line {line[:60]!r} of {child!r}")
            conf = _split(row.group(1))
            try:
                idx = tuple(states[p].index(s) for p, s in zip(ps, conf, strict=True))
            except (ValueError, TypeError):
                raise ValueError(f"BIF: row ({row.group(1)}) of {child!r} does not name one state per parent") from None
            vals = _floats(row.group(2), child)
            if len(vals) != shape[-1]:
                raise ValueError(f"BIF: row ({row.group(1)}) of {child!r} has {len(vals)} values, expected {shape[-1]}")
            cpt[idx] = vals
        if np.isnan(cpt).any():
            raise ValueError(f"BIF: the CPT of {child!r} misses some parent configurations")
        parents[i], cpts[i] = ps, cpt
    missing = [names[i] for i, c in enumerate(cpts) if c is None]
    if missing:
        raise ValueError(f"BIF: no probability block for {missing}")
    return Network(names, states, parents, cpts).check()  # type: ignore[arg-type]


def bundled_path(name: str) -> Path:
    """The ``.bif.gz`` file of a bundled network: genlab's own copies first, then an installed
    pgmpy's ``utils/example_models`` (found without importing pgmpy)."""
    own = NETWORK_DIR / f"{name}.bif.gz"
    if own.is_file():
        return own
    spec = importlib.util.find_spec("pgmpy")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            p = Path(root) / "utils" / "example_models" / f"{name}.bif.gz"
            if p.is_file():
                return p
    have = sorted(p.name[:-7] for p in NETWORK_DIR.glob("*.bif.gz"))
    raise FileNotFoundError(
        f"no bundled network {name!r}: genlab ships {have}; the others (child, insurance, "
        "hailfinder, ...) are read from an installed pgmpy 1.1.0 (`pip install pgmpy==1.1.0`, "
        "or `pip download pgmpy==1.1.0 --no-deps` and pass the .bif.gz path from the wheel)")


def read_bif(source: str | os.PathLike) -> Network:
    """Read a network from ``bif:NAME``, a ``.bif`` / ``.bif.gz`` path, or BIF text."""
    s = str(source)
    if s.lower().startswith("bif:"):
        path = bundled_path(s[4:].strip().lower())
    elif "{" in s:
        return parse_bif(s)
    else:
        path = Path(os.path.expanduser(s))
        if not path.is_file():
            raise FileNotFoundError(f"BIF file {s!r} does not exist (give a path, or bif:asia for a bundled network)")
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
    return parse_bif(text)


# ------------------------------------------------------------------------------------ writing
def format_bif(net: Network, name: str = "genlab") -> str:
    """BIF text of ``net``; probabilities with 17 significant digits, so reading it back is exact."""
    net.check()
    out = [f"network {name} {{\n}}\n"]
    for n, st in zip(net.names, net.states):
        out.append(f"variable {n} {{\n  type discrete [ {len(st)} ] {{ {', '.join(st)} }};\n}}\n")
    for i, (ps, cpt) in enumerate(zip(net.parents, net.cpts)):
        fmt = lambda v: ", ".join(repr(float(x)) for x in v)  # noqa: E731  (repr round-trips)
        head = net.names[i] + (" | " + ", ".join(net.names[p] for p in ps) if ps else "")
        out.append(f"probability ( {head} ) {{\n")
        if not ps:
            out.append(f"  table {fmt(cpt)};\n")
        for conf in np.ndindex(*cpt.shape[:-1]) if ps else ():
            label = ", ".join(net.states[p][k] for p, k in zip(ps, conf))
            out.append(f"  ({label}) {fmt(cpt[conf])};\n")
        out.append("}\n")
    return "".join(out)


def write_bif(net: Network, path: str | os.PathLike, name: str = "genlab") -> None:
    """Write ``net`` to ``path`` (gzip-compressed when the name ends in ``.gz``)."""
    data = format_bif(net, name).encode()
    path = Path(path)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
