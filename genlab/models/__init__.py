"""One module per family; importing this package registers every family.

Every module in this package is imported, so a new family only needs its file and its
``@register`` line.
"""
import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
