"""The API reference: every public name has a docstring, and `docs/build.py` (pdoc) renders the
public modules without a warning."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

import genlab

ROOT = Path(__file__).resolve().parents[1]


def _docs_build() -> ModuleType:
    """``docs/build.py``, which is a script, not part of the package."""
    spec = importlib.util.spec_from_file_location("genlab_docs_build", ROOT / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties a genlab class defines or inherits from a genlab class
    (what torch, scikit-learn or the standard library define is theirs to document)."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("genlab"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            if inspect.isfunction(value) or isinstance(value, (property, classmethod, staticmethod)):
                seen.add(name)
                yield name, getattr(cls, name)


def _public_face() -> Iterator[tuple[str, Any]]:
    """(dotted name, object) for every name of the public face: ``genlab.__all__`` (the lazy
    names), the ``__all__`` of genlab.data, .estimators (and the per-family estimator classes),
    .metrics and .train, and the public functions and classes of genlab.tasks' public modules;
    with the methods and properties of each class."""
    import genlab.estimators

    names: dict[str, list[str]] = {"genlab": list(genlab.__all__)}
    for mod in ("genlab.data", "genlab.estimators", "genlab.metrics", "genlab.train"):
        names[mod] = list(importlib.import_module(mod).__all__)
    names["genlab.estimators"] += sorted(genlab.estimators.class_names())
    for sub in importlib.import_module("genlab.tasks").__all__:
        module = importlib.import_module(f"genlab.tasks.{sub}")
        yield module.__name__, module
        names[module.__name__] = [n for n, v in vars(module).items() if not n.startswith("_")
                                  and (inspect.isfunction(v) or inspect.isclass(v)) and v.__module__ == module.__name__]
    for mod, public in names.items():
        module = importlib.import_module(mod)
        for name in public:
            obj = getattr(module, name)
            yield f"{mod}.{name}", obj
            if inspect.isclass(obj):
                for member, value in _members(obj):
                    yield f"{mod}.{name}.{member}", value


def test_every_public_name_has_a_docstring():
    face = dict(_public_face())
    assert len(face) > 300  # the walk reached the classes' members, not only the module names
    missing = sorted(name for name, obj in face.items() if not (inspect.getdoc(obj) or "").strip())
    assert not missing, f"public names without a docstring: {missing}"


def test_tasks_public_modules_exist():
    import genlab.tasks

    assert genlab.tasks.__all__ == ["outliers", "impute", "interpolate", "compress"]
    for sub in genlab.tasks.__all__:
        assert importlib.import_module(f"genlab.tasks.{sub}").__doc__


def test_reference_renders(tmp_path):
    pytest.importorskip("pdoc", reason="the API reference needs pdoc (the docs extra)")
    build = _docs_build()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # without the search index and the highlighted source: they take 80 % of the time and
        # come from pdoc itself, whereas the docstrings and the module walk are genlab's
        index = build.build(tmp_path, search=False, show_source=False)
    pdoc_warnings = [str(w.message) for w in caught if "pdoc" in (w.filename or "")]
    assert not pdoc_warnings, pdoc_warnings
    assert index.is_file()
    pages = {
        "genlab.html": ["Estimator", "Trainer", "make", "load", "GenerativeModel", "log_prob", "NotSupported",
                        *genlab.__all__],
        "genlab/data.html": ["load_dataset", "split", "DataSpec"],
        "genlab/estimators.html": ["GenerativeClassifier", "GenerativeImputer", "GenerativeOutlierDetector",
                                   "score_samples"],
        "genlab/metrics.html": ["nll", "bits_per_dim", "perplexity", "precision_recall", "Estimate"],
        "genlab/tasks.html": ["outliers", "impute", "interpolate", "compress"],
        "genlab/tasks/compress.html": ["decompress", "measure"],
        "genlab/train.html": ["TrainConfig", "Trainer", "StopReason", "max_minutes", "resume"],
    }
    for page, words in pages.items():
        html = (tmp_path / page).read_text(encoding="utf-8")
        absent = [w for w in words if f'id="{w}"' not in html and f">{w}<" not in html]
        assert not absent, f"{page} does not document {absent}"
    # the landing page (index.html sends readers to genlab.html) links to every other module's page
    top = (tmp_path / "genlab.html").read_text(encoding="utf-8")
    unlinked = [m for m in build.MODULES[1:] if f'href="{m.replace(".", "/")}.html"' not in top]
    assert not unlinked, f"genlab.html has no link to {unlinked}"
    # pdoc follows genlab.tasks.__all__: the tasks' helper modules stay out of the reference
    assert not (tmp_path / "genlab" / "tasks" / "bitsback.html").exists()
    # Google-style sections are rendered as sections, not as plain text
    assert "Arguments:" in (tmp_path / "genlab" / "train.html").read_text(encoding="utf-8")
