"""Where baseres keeps what it builds on a machine (the generated synthetic set, the feature
cache): one small module that both import, so neither imports the other for it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """$XDG_CACHE_HOME/baseres, else ~/.cache/baseres."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "baseres"
