"""Parquet shards for the Dask engine: what the client writes and what a worker task does with one shard.

A task's output path is fixed by its shard, and written atomically (temporary name, then rename): a task
that ran twice (a worker died after writing, the scheduler re-ran it) finds its output and returns it, so
a lost worker costs a recomputation, never a duplicate or a half-written shard.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import polars as pl

from curate.store import atomic_path

VALUES = "values"  # the one column of a map_slices shard


@dataclass
class ShardResult:
    out_path: Path
    rows: int
    stats: dict[str, Any] = field(default_factory=dict)
    quarantine: list[dict[str, Any]] = field(default_factory=list)


def write_input_shards(df: pl.DataFrame, folder: Path, shard_rows: int) -> list[Path]:
    """``df`` as consecutive parquet shards in ``folder`` (at least one, so an empty frame still runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, start in enumerate(range(0, max(df.height, 1), shard_rows)):
        path = folder / f"in-{i:05d}.parquet"
        with atomic_path(path) as tmp:
            df.slice(start, shard_rows).write_parquet(tmp, statistics=False)
        paths.append(path)
    return paths


class _Quiet:
    """Progress on a worker: the client shows progress per shard, workers stay silent."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self) -> "_Quiet":
        return self

    def advance(self, n: int = 1) -> None:
        pass

    def __exit__(self, *exc) -> None:
        pass


def run_stage_shard(stage_name: str, options: Any, in_path: Path | None, out_path: Path,
                    taxonomy_path: Path | None, work_dir: Path) -> ShardResult:
    """A worker task: the stage's own ``run`` on one shard (None: a stage that creates rows, on its part of
    the options), its output written once, atomically."""
    from curate import records
    from curate.stage import StageContext, load_stage
    from curate.store import QuarantineBuffer

    info_path = out_path.with_suffix(".json")
    if out_path.exists():  # this task already ran to the end (the worker was lost after writing)
        return ShardResult(out_path=out_path, **json.loads(info_path.read_text(encoding="utf-8")))
    stage = load_stage(stage_name)
    quarantine = QuarantineBuffer(stage_name)
    ctx = StageContext(stage=stage_name, work_dir=work_dir, taxonomy_path=taxonomy_path, quarantine=quarantine,
                       progress=_Quiet, log=lambda message: None)
    df = records.empty() if in_path is None else pl.read_parquet(in_path)
    out = records.conform(stage.run(df, options, ctx))
    info = {"rows": out.height, "stats": ctx.stats, "quarantine": quarantine.rows}
    with atomic_path(info_path) as tmp:  # first the side facts, then the shard: the shard marks it done
        tmp.write_text(json.dumps(info, ensure_ascii=False, default=str), encoding="utf-8")
    with atomic_path(out_path) as tmp:
        out.write_parquet(tmp, statistics=False)
    return ShardResult(out_path=out_path, **info)


def apply_to_shard(fn: Callable[[pl.Series], Any], in_path: Path) -> Any:
    """A worker task: ``fn`` on the column of one map_slices shard (its result travels back to the client)."""
    return fn(pl.read_parquet(in_path)[VALUES])


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Stage statistics of several shards as one: counts add up, nested counts merge, anything else is the first."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            have = merged.get(key)
            if key not in merged:
                merged[key] = json.loads(json.dumps(value, default=str)) if isinstance(value, dict) else value
            elif isinstance(value, bool) or isinstance(have, bool):
                continue
            elif isinstance(value, (int, float)) and isinstance(have, (int, float)):
                merged[key] = have + value
            elif isinstance(value, dict) and isinstance(have, dict):
                merged[key] = merge_stats([have, value])
    return merged
