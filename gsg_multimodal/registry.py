"""Find domain plug-ins without the core importing any of them by name.

Domains are discovered through the ``gsg_multimodal.domains`` entry point group
(the built-in ones are declared in this project's ``pyproject.toml``; a third-party
package declares its own), or named directly in a config as ``module.path:ClassName``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    from .domain import Domain

GROUP = "gsg_multimodal.domains"


def available_domains() -> dict[str, str]:
    """Registered domain names -> ``module:Class`` (nothing is imported)."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def get_domain(name: str) -> type[Domain]:
    from .domain import Domain

    target = available_domains().get(name, name if ":" in name else None)
    if target is None:
        known = ", ".join(sorted(available_domains())) or "none (is the package installed with 'pip install -e .'?)"
        raise UserError(f"unknown domain '{name}'; registered domains: {known}")
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"domain '{name}' points to '{target}', which cannot be imported ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, Domain)):
        raise UserError(f"domain '{name}' ({target}) is not a subclass of gsg_multimodal.domain.Domain")
    return cls
