"""The engine flags shared by `curate run` and the stage commands: --engine, --scheduler, --dask-workers."""
from __future__ import annotations

from typing import Callable

import click

from curate.engine.settings import EngineSettings

FLAGS = ("engine", "scheduler", "dask_workers")
_SPECS = [
    (("--engine",), dict(type=click.Choice(["local", "dask"]), default=None,
                         help="Where stages run: local (this process) or dask [default: the pipeline's engine, "
                              "else local].")),
    (("--scheduler",), dict(metavar="ADDRESS", default=None,
                            help="Dask scheduler address (tcp://host:8786); implies --engine dask.")),
    (("--dask-workers",), dict(type=click.IntRange(1, 256), default=None,
                               help="Worker processes of the LocalCluster curate starts for --engine dask when no "
                                    "scheduler is given [default: 2].")),
]


def engine_params() -> list[click.Option]:
    """The flags as click parameters (for commands built from a list)."""
    return [click.Option(list(decls), **kwargs) for decls, kwargs in _SPECS]


def engine_options(fn: Callable) -> Callable:
    """Decorator: add the flags to a click command (its callback receives engine, scheduler, dask_workers)."""
    for decls, kwargs in reversed(_SPECS):
        fn = click.option(*decls, **kwargs)(fn)
    return fn


def settings_from_flags(base: EngineSettings | None, engine: str | None, scheduler: str | None,
                        dask_workers: int | None) -> EngineSettings:
    """The pipeline's engine settings (or the defaults) with the flags given on the command line applied."""
    return (base or EngineSettings()).overridden(engine=engine, scheduler=scheduler, workers=dask_workers)
