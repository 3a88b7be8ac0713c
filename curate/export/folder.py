"""Write a hub-style dataset folder atomically: data/<split>-NNNNN-of-NNNNN.parquet, README.md, images, recipe.

The folder is built beside the target and swapped in, so a failed export leaves the previous one intact.
An existing folder is replaced only if it is empty or carries export's own marker file (``.curate-export``),
which every export writes: a folder that merely looks like a dataset (a README.md and a data/) is the user's.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.config import ConfigError
from curate.store import staged_folder as store_staged_folder

EXPORT_MARKER = ".curate-export"


class ExportError(ConfigError):
    """The export folder cannot be written; the message says why."""


def _written_by_export(folder: Path, in_run_folder: bool) -> bool:
    if (folder / EXPORT_MARKER).is_file() or not any(folder.iterdir()):
        return True
    # An export made before the marker existed, in its default place inside a run folder (curate's own):
    # accepted only if every file in it is one that export writes.
    return in_run_folder and all(_export_file(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def _export_file(rel: Path) -> bool:
    """README.md, recipe.yaml, data/*.parquet, images/*.png: the files an export writes."""
    if len(rel.parts) == 1:
        return rel.name in ("README.md", "recipe.yaml")
    return len(rel.parts) == 2 and (rel.parts[0], rel.suffix) in (("data", ".parquet"), ("images", ".png"))


def check_replaceable(target: Path, run_dir: Path | None = None) -> None:
    """Refuse (one line) unless ``target`` is missing, empty, or an earlier export of curate's."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ExportError(f"{target}: exists and is not a folder curate exported; choose a new or empty folder")
    in_run_folder = run_dir is not None and Path(os.path.abspath(target)) == Path(os.path.abspath(run_dir)) / "export"
    if target.exists() and not _written_by_export(target, in_run_folder):
        raise ExportError(f"{target}: exists and is not an earlier export (no {EXPORT_MARKER} marker); "
                          "curate only replaces folders it exported; choose a new or empty folder")
    here = Path(os.path.abspath(Path.cwd()))
    if Path(os.path.abspath(target)) in (here, *here.parents):
        raise ExportError(f"{target}: is the current folder or one of its parents; choose a new folder")


@contextlib.contextmanager
def staged_folder(target: Path, run_dir: Path | None = None) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``target`` (only an earlier export or nothing)."""
    check_replaceable(target, run_dir)
    with store_staged_folder(target) as tmp:
        yield tmp
        (tmp / EXPORT_MARKER).write_text("written by curate export; the folder is replaced by the next export\n",
                                         encoding="utf-8")


def write_split(folder: Path, split: str, table: pa.Table, shard_rows: int) -> str:
    """Write one split's shards; returns the data_files glob for the card's configs."""
    data = folder / "data"
    data.mkdir(exist_ok=True)
    n = max(1, -(-table.num_rows // shard_rows))
    for i in range(n):
        pq.write_table(table.slice(i * shard_rows, shard_rows), data / f"{split}-{i:05d}-of-{n:05d}.parquet")
    return f"data/{split}-*"
