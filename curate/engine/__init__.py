"""Where stages run: this process (``local``, the default) or a Dask cluster (``dask``), with the same output.

An engine offers two hooks: ``run_stage`` (the runner calls it for every stage; a stage marked
``shardable`` runs per shard) and ``map_slices`` (a stage maps a column kernel over slices of a column).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from curate.engine.local import LOCAL, LocalEngine
from curate.engine.settings import DaskSettings, EngineSettings


@contextlib.contextmanager
def open_engine(settings: EngineSettings | None, log: Callable[[str], None] = print) -> Iterator:
    """The engine the settings name, stopped (cluster and client) when the block ends, also on failure."""
    if settings is None or settings.engine == "local":
        yield LOCAL
        return
    from curate.engine.dask import connect

    with connect(settings.dask, log) as engine:
        yield engine


__all__ = ["DaskSettings", "EngineSettings", "LOCAL", "LocalEngine", "open_engine"]
