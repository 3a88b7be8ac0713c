"""Where stages run: this process (``local``, the default) or a Dask cluster (``dask``), with the same output.

An engine offers three hooks: ``run_stage`` (the runner calls it for every stage; a stage marked
``shardable`` runs per shard), ``map_slices`` (a stage maps a column kernel over slices of a column) and
``run_requests`` (a stage sends LLM requests; the Dask engine sends them in batches from the workers).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from curate.engine.local import LOCAL, LocalEngine
from curate.engine.settings import DaskSettings, EngineSettings, EngineUnavailable


@contextlib.contextmanager
def open_engine(settings: EngineSettings | None, log: Callable[[str], None] = print) -> Iterator:
    """The engine the settings name. A Dask engine connects (or starts its LocalCluster) when a stage first
    needs a worker, and is stopped (client, cluster, worker processes) when the block ends, also on failure."""
    if settings is None or settings.engine == "local":
        yield LOCAL
        return
    try:
        import distributed  # noqa: F401 - the extra, checked before any stage runs
    except ImportError:
        raise EngineUnavailable("engine dask needs the Dask extra: pip install 'curate[dask]'") from None
    from curate.engine.dask import DaskEngine

    engine = DaskEngine(settings.dask, log)
    try:
        yield engine
    finally:
        engine.close()


__all__ = ["DaskSettings", "EngineSettings", "EngineUnavailable", "LOCAL", "LocalEngine", "open_engine"]
