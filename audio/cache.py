"""facetwin's cache folder (built corpora, derived model files): one place decides where it is.

| source | folder |
|---|---|
| ``$FACETWIN_CACHE`` | that folder |
| ``$XDG_CACHE_HOME`` | ``$XDG_CACHE_HOME/facetwin`` |
| otherwise | ``~/.cache/facetwin`` |
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """facetwin's cache folder: ``$FACETWIN_CACHE``, else ``$XDG_CACHE_HOME/facetwin``, else ``~/.cache/facetwin``."""
    env = os.environ.get("FACETWIN_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "facetwin"


__all__ = ["default_cache_dir"]
