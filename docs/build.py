"""Build genlab's API reference (HTML, from the docstrings) with pdoc.

    python docs/build.py                 # writes docs/api/ (open docs/api/index.html)
    python docs/build.py --out DIR       # elsewhere
    python docs/build.py --no-source     # without each function's source (smaller pages, a faster build)

Needs the ``docs`` extra (``pip install -e ".[docs]"``: pdoc). The reference covers the public
face: ``genlab`` (the names of ``genlab.__all__``), ``genlab.data``, ``genlab.estimators``,
``genlab.metrics``, ``genlab.tasks`` (its public submodules, from its ``__all__``) and
``genlab.train``. Docstrings are Google style.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# the public modules; a package's own `__all__` decides which of its submodules join
MODULES = ("genlab", "genlab.data", "genlab.estimators", "genlab.metrics", "genlab.tasks", "genlab.train")
DEFAULT_OUT = Path(__file__).resolve().parent / "api"


def configure(search: bool = True, show_source: bool = True) -> None:
    """Set pdoc's rendering options (Google-style docstrings, the version in the footer).

    Args:
        search: build the search index (``search.js``).
        show_source: add each function's source under a "View Source" fold (highlighting it is
            much of the rendering time).
    """
    import pdoc.render

    import genlab

    pdoc.render.configure(docformat="google", search=search, show_source=show_source,
                          footer_text=f"genlab {genlab.__version__}")


def resolve_lazy_names() -> None:
    """Import every name of ``genlab.__all__``: ``genlab`` imports them on first use (so that
    ``import genlab`` stays light), and pdoc documents what the module holds."""
    import genlab

    for name in genlab.__all__:
        getattr(genlab, name)


def build(out: str | Path = DEFAULT_OUT, modules: tuple[str, ...] = MODULES, *, search: bool = True,
          show_source: bool = True) -> Path:
    """Write the HTML reference of ``modules`` (and their public submodules) into ``out``.

    Args:
        out: the output folder (created; files of an earlier build are overwritten).
        modules: dotted module names.
        search: also write the search index.
        show_source: include the source of each function.

    Returns:
        The path of ``index.html``.
    """
    import pdoc

    configure(search, show_source)
    resolve_lazy_names()
    out = Path(out)
    pdoc.pdoc(*modules, output_directory=out)
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: docs/api)")
    p.add_argument("--no-source", action="store_true",
                   help="leave out the functions' source (smaller pages, a faster build)")
    args = p.parse_args(argv)
    try:
        import pdoc  # noqa: F401
    except ModuleNotFoundError:
        print('docs/build.py needs pdoc: pip install -e ".[docs]"', file=sys.stderr)
        return 2
    index = build(args.out, show_source=not args.no_source)
    print(f"API reference written: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
