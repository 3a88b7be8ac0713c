"""The contract every stage follows, and the registry the runner and the CLI read.

A stage is a pydantic ``Options`` model (its config keys, which are also its CLI flags) plus a
pure ``run(records, options, ctx) -> records`` function. Stage packages register themselves by
exposing ``STAGE`` in ``curate/<name>/__init__.py``; ``STAGE_MODULES`` lists them in pipeline order.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import polars as pl
from pydantic import BaseModel, ConfigDict

from curate.engine.local import LOCAL
from curate.progress import Progress

# Pipeline order. A stage module that is not importable yet is simply not offered.
STAGE_MODULES: dict[str, str] = {
    "collect": "curate.collect",
    "dedup": "curate.dedup",
    "classify": "curate.classify",
    "synthesize": "curate.synthesize",
    "review": "curate.review",
    "balance": "curate.balance",
    "export": "curate.export",
}


class StageOptions(BaseModel):
    """Base for every stage's options: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Quarantine(Protocol):
    def __call__(self, *, source: str, location: str, reason: str, raw: str | None = None) -> None: ...


@dataclass
class StageContext:
    """What a stage may use besides its input frame."""

    stage: str
    work_dir: Path  # persistent scratch for caches (run_dir/cache in a pipeline)
    run_dir: Path | None = None  # None when the stage runs alone on files
    taxonomy_path: Path | None = None  # None = the default taxonomy shipped in taxonomy/default
    quarantine: Quarantine = field(default=lambda **_: None)
    stats: dict[str, Any] = field(default_factory=dict)  # figures for the stage manifest ("stats")
    progress: Callable[..., Progress] = field(default=Progress)
    log: Callable[[str], None] = field(default=print)
    upstream: dict[str, Path] = field(default_factory=dict)  # earlier stages' output dirs, by name
    engine: Any = LOCAL  # where work runs (curate.engine): this process, or a Dask cluster
    # the input's parquet shards, when the runner left the stage's ``Stage.streamed`` columns out of its frame or
    # gave a sink stage a lazy scan of them (``curate.streaming``)
    shards: list[Path] | None = None
    # the runner left ``meta`` out of the frame (``Stage.meta_entry_only``): ``add_meta`` keeps the stage's entries
    # here, in the frame's row order, and the runner splices them into each shard's rows
    meta_on_disk: bool = False
    meta_entries: list[tuple[str, pl.Series]] = field(default_factory=list)

    def add_meta(self, df: pl.DataFrame, key: str, entries: pl.Series) -> pl.DataFrame:
        """``meta[key]`` for each row of ``df`` (JSON object text; null: none for that row), merged into ``df``'s
        ``meta`` (``records.with_stage_meta_json``), or kept for the runner when it left ``meta`` on disk."""
        from curate.records import with_stage_meta_json

        if self.meta_on_disk and "meta" not in df.columns:
            self.meta_entries.append((key, entries))
            return df
        return with_stage_meta_json(df, key, entries)

    def derived(self, df: pl.DataFrame | pl.LazyFrame, exprs: list[pl.Expr]) -> pl.DataFrame:
        """``exprs``, a row for each of ``df``'s: over ``df``, or over the shards one at a time (so only what the
        expressions keep is held) where they read columns the runner left on disk (``Stage.streamed``) or ``df``
        is the runner's lazy scan of the shards (a sink stage)."""
        from curate.store import expr_columns, read_shards_derived

        on_disk = isinstance(df, pl.LazyFrame) or not all(c in df.columns for c in expr_columns(exprs))
        if self.shards and on_disk:
            return read_shards_derived(self.shards, exprs)
        return df.lazy().select(exprs).collect()


@dataclass(frozen=True)
class Stage:
    name: str
    Options: type[StageOptions]
    run: Callable[[pl.DataFrame, Any, StageContext], pl.DataFrame]
    help: str
    creates_rows: bool = False  # collect: builds records from sources instead of reading them
    # the record columns the stage reads: the facts earlier stages wrote for it (records.FACTS) and the rest;
    # the runner fails a stage that declares a column the record does not have
    reads: tuple[str, ...] = ()
    # the record columns the stage may change; the runner fails a stage that changes any other (``meta`` too: a
    # stage that appends its lineage there declares it, and a stage that does not is never given it)
    writes: tuple[str, ...] = ()
    always_run: bool = False  # review: its input lives outside the run (reviewers' work), so never skip it
    # Each output row depends on its input row alone (under these options): an engine may run it per shard.
    shardable: Callable[[Any], bool] = field(default=lambda options: False)
    # A stage that creates rows from independent inputs: its options split into one per input (collect: a source).
    parts: Callable[[Any], list[Any]] | None = None
    # A stage whose output is files, not changes to the records (export): it returns its input as it came, so the
    # runner may give it a polars LazyFrame over the run's shards and keep the records as they were.
    sink: bool = False
    # A stage that creates rows may also yield them in batches (``batches(options, ctx)``, the rows of ``run`` in
    # the same order): the runner writes each batch as it comes instead of holding them all (curate.streaming).
    batches: Callable[[Any, StageContext], Iterator[pl.DataFrame]] | None = None
    # Read columns too large to hold for every row, which the stage reads itself from ``ctx.shards`` when the
    # runner leaves them out of its frame (dedup's compared texts, under these options): see curate.streaming.
    streamed: Callable[[Any], tuple[str, ...]] = field(default=lambda options: ())
    # The stage's only change to ``meta`` is its own entry, given through ``StageContext.add_meta``: the runner may
    # leave ``meta`` (every row's lineage, the largest column a stage never reads) on disk and splice the entries
    # into each shard as it writes it (curate.streaming).
    meta_entry_only: bool = False


def load_stage(name: str) -> Stage | None:
    """One stage by name, importing only its package (so a pipeline loads only the stages it names)."""
    module = STAGE_MODULES.get(name)
    return None if module is None else importlib.import_module(module).STAGE


def available_stages() -> dict[str, Stage]:
    return {name: load_stage(name) for name in STAGE_MODULES}
