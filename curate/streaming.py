"""How the pipeline runner feeds a stage and writes its output without holding the run's whole table.

A run's table lives on disk as parquet shards (``curate.store``); memory holds only what a stage needs:

- a stage that creates rows in batches (collect, ``Stage.batches``) has each batch written as it comes;
- a shardable stage (each output row depends on its input row alone: classify) runs on one input shard at a
  time, on the local engine (the Dask engine shards it itself);
- a stage whose output is files (export, ``Stage.sink``) gets a polars LazyFrame over the shards, and the
  records go on unchanged;
- any other stage (dedup, balance: decisions over all rows) gets one frame of only the columns it declares
  (``id``, ``Stage.reads`` and ``Stage.writes``), and what it wrote is put back into the full rows one shard at a
  time, in input order; a stage whose only change to ``meta`` is its own entry (``Stage.meta_entry_only``) is not
  given ``meta`` at all, and its entries are spliced into each shard's rows as they are written.

Each way checks the stage's contract (``curate.contract``) and counts what the stage manifest needs as it goes.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import polars as pl

from curate import funnel, records
from curate.contract import StageFailed, check_declared, run_stage
from curate.engine.shards import merge_stats
from curate.stage import Stage, StageContext
from curate.store import ShardWriter, read_shard, read_shards, shard_paths


@dataclass
class StageCounts:
    """What the stage manifest records about rows, counted shard by shard."""

    rows_in: int = 0
    rows_out: int = 0
    drop_reasons: Counter = field(default_factory=Counter)
    new_drops: Counter = field(default_factory=Counter)

    def add(self, before: pl.DataFrame | None, after: pl.DataFrame) -> None:
        now = funnel.drop_counts(after)
        was = funnel.drop_counts(before) if before is not None else {}
        self.rows_in += 0 if before is None else before.height
        self.rows_out += after.height
        self.drop_reasons.update(now)
        self.new_drops.update({k: v - was.get(k, 0) for k, v in now.items() if v - was.get(k, 0)})


def run_streamed(stage: Stage, options: Any, ctx: StageContext, in_dir: Path | None,
                 writer: ShardWriter) -> StageCounts:
    """Run ``stage`` on the records in ``in_dir`` (None: a stage that creates rows) into ``writer``."""
    local = getattr(ctx.engine, "name", "local") == "local"
    if stage.creates_rows:
        if stage.batches is not None and local:
            return _in_batches(stage, options, ctx, writer)
        return _whole(stage, options, ctx, None, writer)
    if stage.sink:
        return _sink(stage, options, ctx, in_dir, writer)
    if local and stage.shardable(options):
        return _per_shard(stage, options, ctx, in_dir, writer)
    return _declared_columns(stage, options, ctx, in_dir, writer, streamed=stage.streamed(options) if local else (),
                             meta_on_disk=local and stage.meta_entry_only)


def _whole(stage: Stage, options: Any, ctx: StageContext, in_dir: Path | None, writer: ShardWriter) -> StageCounts:
    df = read_shards(in_dir) if in_dir is not None else records.empty()
    out = run_stage(stage, df, options, ctx)
    counts = StageCounts()
    counts.add(None if stage.creates_rows else df, out)
    writer.add(out)
    return counts


def _in_batches(stage: Stage, options: Any, ctx: StageContext, writer: ShardWriter) -> StageCounts:
    """Each batch is checked and written as it comes."""
    check_declared(stage)
    counts = StageCounts()
    for out in write_checked(stage.batches(options, ctx), writer, f"output of {stage.name}"):
        counts.add(None, out)
    return counts


def write_checked(frames: Iterable[pl.DataFrame], writer: ShardWriter, where: str) -> Iterator[pl.DataFrame]:
    """Each frame conformed, validated, written to ``writer`` and yielded, as it comes; when the frames are done,
    ids are checked unique across them by a 64-bit hash each (8 bytes a row, where the ids themselves would
    cost 60)."""
    hashes: list[np.ndarray] = []
    for frame in frames:
        out = records.validate(records.conform(frame), where=where)
        hashes.append(records.id_hashes(out["id"]))
        writer.add(out)
        yield out
    if hashes:
        every = np.concatenate(hashes)
        if len(np.unique(every)) < len(every):  # two frames share a hash: read the ids back to name the id
            writer.close()
            ids = pl.concat([pl.read_parquet(p, columns=["id"]) for p in shard_paths(writer.folder)])["id"]
            records.raise_repeated_id(ids, where, hashes=every)


def _per_shard(stage: Stage, options: Any, ctx: StageContext, in_dir: Path, writer: ShardWriter) -> StageCounts:
    """The stage's own ``run`` on each input shard in turn, under the full contract; statistics merged as the Dask
    engine merges its shards'."""
    counts = StageCounts()
    stats: list[dict[str, Any]] = []
    for path in shard_paths(in_dir):
        df = read_shard(path)
        ctx.stats = {}
        out = run_stage(stage, df, options, ctx)
        stats.append(ctx.stats)
        counts.add(df, out)
        writer.add(out)
    ctx.stats = merge_stats(stats)
    return counts


def _sink(stage: Stage, options: Any, ctx: StageContext, in_dir: Path, writer: ShardWriter) -> StageCounts:
    """A stage whose output is files reads the shards lazily (what it collects is all it holds); the records go
    on as they were, as hard links to the input's shards where the file system allows."""
    check_declared(stage)
    paths = shard_paths(in_dir)
    current = _current(paths)
    # shards written before a fact column existed are migrated on read (records.conform), so read whole
    rows = pl.scan_parquet(paths) if current else read_shards(in_dir).lazy()
    ctx.shards = paths if current else None  # the same rows, for a stage that reads them a shard at a time
    try:
        ctx.engine.run_stage(stage, rows, options, ctx)
    finally:
        ctx.shards = None
    counts = StageCounts()
    for path in paths:
        if current:  # the records go on as the very same files
            drops = pl.read_parquet(path, columns=["drop_reason"])
            counts.add(drops, drops)
            writer.link(path)
        else:
            df = read_shard(path)
            counts.add(df, df)
            writer.add(df)
    return counts


def _current(paths: list[Path]) -> bool:
    """The shards have today's columns (older shards are migrated on read, records.conform, so read whole)."""
    return set(pl.read_parquet_schema(paths[0])) == set(records.SCHEMA)


def declared_columns(stage: Stage) -> list[str] | None:
    """The columns a stage is given when it sees every row at once (None: every column, for a stage that
    declares nothing it reads)."""
    if not stage.reads:
        return None
    wanted = {"id", *stage.reads, *stage.writes}
    return [c for c in records.SCHEMA if c in wanted]


def _declared_columns(stage: Stage, options: Any, ctx: StageContext, in_dir: Path, writer: ShardWriter,
                      streamed: tuple[str, ...] = (), meta_on_disk: bool = False) -> StageCounts:
    """``streamed``: declared columns left out of the frame, which the stage reads from ``ctx.shards`` itself.
    ``meta_on_disk``: ``meta`` is left out too, and the entries the stage gives ``ctx.add_meta`` are spliced into
    each shard's rows as it is written (meta, every row's lineage, is the largest column such a stage is given and
    never reads; docs/scale.md has what it saves)."""
    columns = declared_columns(stage)
    if columns is None:
        return _whole(stage, options, ctx, in_dir, writer)
    if set(streamed) & set(stage.writes):
        raise StageFailed(f"stage {stage.name} streams {', '.join(streamed)}, which it also writes")
    paths = shard_paths(in_dir)
    if streamed and _current(paths):
        columns = [c for c in columns if c not in streamed]
        ctx.shards = paths
    meta_on_disk = meta_on_disk and "meta" in columns  # a stage that does not declare meta may not add to it
    if meta_on_disk:
        columns = [c for c in columns if c != "meta"]
    ctx.meta_on_disk, ctx.meta_entries = meta_on_disk, []
    df = read_shards(in_dir, columns)
    try:
        out = run_stage(stage, df, options, ctx, columns=columns)
        entries = ctx.meta_entries
    finally:
        ctx.shards, ctx.meta_on_disk, ctx.meta_entries = None, False, []
    if not out["id"].equals(df["id"]):  # put back in input order (run_stage checked the ids are the same)
        order = df.select("id").join(out.select("id").with_row_index("_at"), on="id", how="left",
                                     maintain_order="left")["_at"]
        out, entries = out.select(pl.all().gather(order)), [(key, e.gather(order)) for key, e in entries]
    del df
    changed = [c for c in columns if c in stage.writes]
    counts = StageCounts()
    start = 0
    for path in paths:
        full = read_shard(path)
        mine = out.slice(start, full.height)
        if not mine["id"].equals(full["id"]):  # the declared columns were read from these very shards
            raise StageFailed(f"stage {stage.name}: shard {path.name} does not line up with the stage's rows")
        merged = full.with_columns(mine[c] for c in changed)
        for key, entry in entries:
            merged = records.with_stage_meta_json(merged, key, entry.slice(start, full.height))
        start += full.height
        counts.add(full, merged)
        writer.add(merged)
    return counts
