"""gsg-multimodal: Guided Stop-Gradient (GSG) pretraining for any kind of data.

Importing the package is cheap; torch and the domains load when first used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["GSGEncoder", "load_encoder", "__version__"]


def load_encoder(path: str, map_location: str = "cpu") -> Any:
    """Rebuild an exported encoder (a run directory or its ``encoder/`` folder) without the trainer."""
    from .export import load_encoder as _load

    return _load(path, map_location=map_location)


def __getattr__(name: str) -> Any:
    """``GSGEncoder`` (``from_pretrained`` / ``push_to_hub`` for exports) is imported on first use."""
    if name == "GSGEncoder":
        from .export import GSGEncoder

        return GSGEncoder
    raise AttributeError(f"module 'gsg_multimodal' has no attribute {name!r}")
