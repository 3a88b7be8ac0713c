"""Write a hub-style dataset folder atomically: data/<split>-NNNNN-of-NNNNN.parquet, README.md, images, recipe.

The folder is built beside the target and swapped in, so a failed export leaves the previous one intact.
An existing folder is only replaced if it looks like an earlier export (never a user's unrelated folder).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from curate.config import ConfigError
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.store import staged_folder as store_staged_folder


class ExportError(ConfigError):
    """The export folder cannot be written; the message says why."""


def _looks_like_export(folder: Path) -> bool:
    names = {p.name for p in folder.iterdir()}
    return not names or ("README.md" in names and "data" in names)


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``target`` (only an earlier export or nothing)."""
    if target.exists() and (not target.is_dir() or not _looks_like_export(target)):
        raise ExportError(f"{target}: exists and is not an earlier export (no README.md + data/); "
                          "choose an empty or new folder")
    with store_staged_folder(target) as tmp:
        yield tmp


def write_split(folder: Path, split: str, table: pa.Table, shard_rows: int) -> str:
    """Write one split's shards; returns the data_files glob for the card's configs."""
    data = folder / "data"
    data.mkdir(exist_ok=True)
    n = max(1, -(-table.num_rows // shard_rows))
    for i in range(n):
        pq.write_table(table.slice(i * shard_rows, shard_rows), data / f"{split}-{i:05d}-of-{n:05d}.parquet")
    return f"data/{split}-*"
