"""Where the embedded model, the runtime build and the server state live: the user cache, not the run.

``$CURATE_CACHE_DIR`` overrides the default ``~/.cache/curate`` (``$XDG_CACHE_HOME/curate`` when set), so
tests and CI can point every run at one shared, already-filled cache.
"""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "CURATE_CACHE_DIR"


def cache_root() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "curate"


def models_dir() -> Path:
    return cache_root() / "models"


def runtime_dir() -> Path:
    return cache_root() / "llama.cpp"


def state_dir() -> Path:
    return cache_root() / "servers"
