"""``genlab list``: the capability table of every family and the data sets.

The table is read from the family classes, which takes importing torch and every model
(seconds). It depends on nothing but genlab's own files, so it is kept in the cache folder
(``$GENLAB_CACHE`` or ``~/.cache/genlab``, as the feature classifiers) under a key made of the
version and the size and modification time of every file of the package: the next ``genlab
list`` prints it without importing torch, and any edit or upgrade of genlab makes a new table.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

from ..version import __version__

CACHE_ENV = "GENLAB_CACHE"  # the same folder as genlab.evaluate.CACHE_ENV
DEFAULT_CACHE = "~/.cache/genlab"
PACKAGE = Path(__file__).resolve().parents[1]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``list`` to the sub-command parsers ``sub``."""
    lp = sub.add_parser("list", help="families with their capabilities; data sets",
                        description="List the registered families (with the capability row of the design table) "
                                    "and the named data sets.")
    lp.set_defaults(handler=cmd_list)


def source_key(package: Path = PACKAGE) -> str:
    """A digest of the version and every file of ``package`` (path, size, modification time)."""
    h = hashlib.sha256(f"{__version__} {sys.version_info[:2]}".encode())
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".bif.gz")):
                st = os.stat(os.path.join(root, name))
                h.update(f"{os.path.relpath(os.path.join(root, name), package)} {st.st_size} {st.st_mtime_ns}\n"
                         .encode())
    return h.hexdigest()[:24]


def cache_file(key: str) -> Path:
    """Where the table of ``key`` is kept."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser() / f"list-{key}.txt"


def table() -> str:
    """The text ``genlab list`` prints, built from the registry (imports every family)."""
    from ..data import dataset_names
    from ..data.datasets import network_names
    from ..data.spec import Kind
    from ..protocol import Conditional, Decoder, Energy
    from ..registry import families, get_family

    rows = [("family", "row of the table", "density", "sampling", "training", "latents", "conditional",
             "compare", "data")]
    for name in families():
        cls = get_family(name)
        # codes a model decodes (an encoder is not needed to have them: a GAN's generator)
        lat = getattr(cls, "latent_kind", "R^L") if issubclass(cls, Decoder) else (
            "energy" if issubclass(cls, Energy) else "none")
        compare = f"{cls.compare_minutes:g} min" + (", default" if vars(cls).get("in_default_compare") else "")
        kinds = "any" if cls.data_kinds >= frozenset(Kind) else ",".join(k.value for k in Kind if k in cls.data_kinds)
        rows.append((name, cls.taxonomy or "-", cls.density.value, cls.sampling, cls.training, lat,
                     "yes" if issubclass(cls, Conditional) else "no", compare, kinds))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["", "compare: the family's training budget in `genlab compare`; default: in its default set "
              "(one family per row of the table, plus baselines)",
              "data sets: " + ", ".join(dataset_names()),
              "Bayesian networks: " + ", ".join(f"bif:{n}" for n in network_names())
              + " (the others of pgmpy 1.1.0 when it is installed), or bif:PATH / PATH.bif[.gz]",
              "or a path: .npy / .npz / .csv / .txt, or a folder of PNG/JPEG images; NAME:binary makes grey "
              "levels black and white"]
    return "\n".join(lines) + "\n"


def cmd_list(args: argparse.Namespace) -> int:
    """Print the capability table of every family and the named data sets (from the cache when
    genlab's files have not changed since it was made)."""
    path = cache_file(source_key())
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = table()
        try:  # a cache that cannot be written only costs the next call its seconds
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        except OSError:
            pass
    sys.stdout.write(text)
    return 0
