"""Reading and writing record tables: .jsonl, .jsonl.gz, .csv, .parquet, or a folder of parquet shards.

These read files that already hold curate records (a stage's output). Raw source files with their own
fields go through the collect stage instead, which quarantines what it cannot parse.
"""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Callable, Iterable, Iterator

import polars as pl

from curate import records
from curate.errors import UsageError
from curate.store import atomic_path

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".parquet")
JSON_COLUMNS = ("meta", "category_scores")
LIST_COLUMNS = ("source_labels", "categories")


class InputError(UsageError):
    """A path cannot be read as records; the message says which path and why."""


def table_format(path: Path) -> str:
    name = path.name.lower()
    if path.is_dir():
        return "parquet-dir"
    for suffix in (".jsonl.gz", ".jsonl", ".json", ".csv", ".parquet"):
        if name.endswith(suffix):
            return suffix.lstrip(".")
    raise InputError(f"{path}: unsupported file type (use {', '.join(SUFFIXES)} or a folder of parquet shards)")


def sidecar_path(path: Path, what: str) -> Path:
    """The file beside a records output that belongs to it alone: ``a.v1.parquet`` -> ``a.v1.<what>.jsonl``.

    Only the records suffix is taken off, so two outputs in one folder never share a quarantine file.
    """
    name = path.name
    for suffix in (".jsonl.gz", *SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(f"{name}.{what}")


def read_records(path: str | Path) -> pl.DataFrame:
    """Read records and conform them to the schema (missing optional columns become nulls)."""
    return pl.concat(list(iter_records(path)), how="vertical")


# Rows per frame when a parquet file is read a part at a time (a shard's worth, as the run store writes them).
READ_BATCH_ROWS = 100_000


def iter_records(path: str | Path) -> Iterator[pl.DataFrame]:
    """The records of ``path`` as conformed frames, in file order: parquet a part at a time (by row groups of about
    ``READ_BATCH_ROWS`` rows; a folder shard by shard), JSON lines and CSV ``READ_BATCH_ROWS`` lines at a time,
    so a large input is never one frame (a JSON array is one document, read whole). At least one frame, possibly
    empty."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    fmt = table_format(path)
    if fmt == "parquet-dir":
        shards = sorted(path.glob("*.parquet"))
        if not shards:
            raise InputError(f"{path}: folder has no .parquet shards")
        for shard in shards:
            yield from _conformed(shard, "parquet", lambda shard=shard: _parquet_parts(shard))
    elif fmt == "parquet":
        yield from _conformed(path, fmt, lambda: _parquet_parts(path))
    elif fmt == "csv":
        yield from _conformed(path, fmt, lambda: _csv_parts(path))
    elif fmt == "json":
        yield from _conformed(path, fmt, lambda: [_json_array(path)])
    else:
        yield from _conformed(path, fmt, lambda: _json_lines_parts(path, gz=fmt == "jsonl.gz"))


def _parquet_parts(path: Path) -> Iterator[pl.DataFrame]:
    """A parquet file's rows, consecutive row groups together up to ``READ_BATCH_ROWS`` rows (a larger row group
    alone: a part never splits one, which would decode it again for each piece). Polars reads each part; through
    pyarrow's batches the process grew by a part's size at every part."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    scan = pl.scan_parquet(path)
    start, size = 0, 0
    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        if size and size + rows > READ_BATCH_ROWS:
            yield scan.slice(start, size).collect()
            start, size = start + size, 0
        size += rows
    if size or not start:  # the last part; for a file of no rows, its schema
        yield scan.slice(start, size).collect()


def _conformed(path: Path, fmt: str, read: Callable[[], Iterable[pl.DataFrame]]) -> Iterator[pl.DataFrame]:
    """``read()``'s frames conformed to the schema; a reader's or the schema's complaint as one clear line."""
    frames = None
    while True:
        try:
            frames = frames or iter(read())
            df = next(frames, None)
        except InputError:
            raise
        except Exception as exc:  # polars/arrow parse errors: one clear line
            raise InputError(f"{path}: cannot read as {fmt}: {exc}") from exc
        if df is None:
            return
        try:
            yield records.conform(df)
        except records.SchemaError as exc:
            raise InputError(f"{path}: {exc}") from exc


def _csv_parts(path: Path) -> Iterator[pl.DataFrame]:
    """A CSV file's rows, ``READ_BATCH_ROWS`` at a time, every value as text (then decoded)."""
    parts = pl.scan_csv(path, infer_schema=False).collect_batches(chunk_size=READ_BATCH_ROWS)
    empty = True
    for part in parts:
        empty = False
        yield _decode_text_columns(part)
    if empty:  # a header alone
        yield _decode_text_columns(pl.read_csv(path, infer_schema=False))


def _json_lines_parts(path: Path, gz: bool) -> Iterator[pl.DataFrame]:
    """A JSON-lines file's rows, ``READ_BATCH_ROWS`` lines at a time (a file of none: an empty frame)."""
    opener = gzip.open if gz else open
    with opener(path, "rb") as fh:
        lines: list[bytes] = []
        first_line = 1
        for lineno, line in enumerate(fh, 1):
            lines.append(line)
            if len(lines) == READ_BATCH_ROWS:
                yield _parse_json_lines(path, lines, first_line)
                lines, first_line = [], lineno + 1
        if lines or first_line == 1:
            yield _parse_json_lines(path, lines, first_line)


def _parse_json_lines(path: Path, lines: list[bytes], first_line: int) -> pl.DataFrame:
    """Consecutive lines of a JSON-lines file, ``first_line`` the first one's number (for errors)."""
    fast = _read_ndjson_fast(b"".join(lines))
    if fast is not None:
        return fast
    rows = []
    for lineno, line in enumerate(lines, first_line):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}:{lineno}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
    return _rows_frame(rows)


def _json_array(path: Path) -> pl.DataFrame:
    with open(path, encoding="utf-8") as fh:
        return _rows_frame(json.load(fh))


def _rows_frame(rows: list[dict]) -> pl.DataFrame:
    """Parsed JSON rows as a frame; a nested ``meta`` or ``category_scores`` object becomes its JSON text."""
    for row in rows:
        for col in JSON_COLUMNS:
            if col in row and not isinstance(row[col], (str, type(None))):
                row[col] = records.dump_meta(row[col])
    return pl.DataFrame(rows, schema_overrides={c: records.SCHEMA[c] for c in records.SCHEMA if rows and c in rows[0]},
                        infer_schema_length=None) if rows else records.empty()


def _read_ndjson_fast(data: bytes) -> pl.DataFrame | None:
    """Polars' native JSON-lines reader (a tenth of the time of a ``json.loads`` per line, which is most of a
    small ``curate dedup``), or None when the lines need the per-line reader: a bad line (which it names), a
    nested ``meta`` object to turn into text, a value that does not fit its column, no rows."""
    try:
        df = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    except Exception:
        return None
    if df.height == 0:
        return None
    for name, dtype in df.schema.items():  # a nested meta is a struct here, not the schema's text: per-line reader
        if name in records.SCHEMA and dtype not in (records.SCHEMA[name], pl.Null, pl.List(pl.Null)):
            return None
    return df


def _decode_text_columns(df: pl.DataFrame) -> pl.DataFrame:
    """CSV keeps lists as JSON text; booleans as text."""
    out = []
    for col in df.columns:
        if col in LIST_COLUMNS:
            out.append(pl.col(col).map_elements(lambda s: json.loads(s) if s else [], return_dtype=pl.List(pl.Utf8)))
        elif records.SCHEMA.get(col) == pl.Boolean:
            out.append(pl.col(col).str.to_lowercase().replace_strict({"true": True, "false": False, "1": True, "0": False},
                                                                      default=None, return_dtype=pl.Boolean))
        else:
            out.append(pl.col(col))
    return df.select(out)


def write_records(df: pl.DataFrame, path: str | Path, *, shard_rows: int = 100_000) -> Path:
    """Write records atomically to a file, or to a folder of parquet shards when ``path`` has no suffix."""
    return write_record_frames([df], path, shard_rows=shard_rows)


def write_record_frames(frames: Iterable[pl.DataFrame], path: str | Path, *, shard_rows: int = 100_000) -> Path:
    """``write_records`` for records that come a frame at a time (one or more: a run's shards), holding one frame
    at a time."""
    path = Path(path)
    if path.suffix == "" and not path.name.endswith(".jsonl.gz"):
        from curate.store import MANIFEST, shard_writer

        # The folder is replaced whole: only ever one that holds nothing but shards (ours, or nothing at all).
        if path.is_dir() and any(not (p.name.startswith("part-") and p.suffix == ".parquet") and p.name != MANIFEST
                                 for p in path.iterdir()):
            raise InputError(f"{path}: folder holds files that are not record shards; curate replaces an output "
                             "folder whole, so choose a new or empty folder")
        with shard_writer(path, shard_rows=shard_rows) as writer:
            for df in frames:
                writer.add(df)
        return path
    fmt = table_format(path)
    if fmt not in ("parquet", "csv", "jsonl", "jsonl.gz"):
        raise InputError(f"{path}: write .jsonl, .jsonl.gz, .csv, .parquet or a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            _write_parquet(frames, tmp)
        elif fmt == "csv":
            with open(tmp, "wb") as fh:
                for i, df in enumerate(frames):
                    df.with_columns([pl.Series(c, [json.dumps(v, ensure_ascii=False) for v in df[c].to_list()],
                                               dtype=pl.Utf8) for c in LIST_COLUMNS]).write_csv(fh, include_header=i == 0)
        else:
            opener = gzip.open if fmt == "jsonl.gz" else open
            with opener(tmp, "wt", encoding="utf-8") as fh:
                for df in frames:
                    for row in df.iter_rows(named=True):
                        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _write_parquet(frames: Iterable[pl.DataFrame], path: Path) -> None:
    """One parquet file, a row group per frame (zstd, as polars writes)."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for df in frames:
            table = df.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            if table.num_rows:
                writer.write_table(table)
        if writer is None:  # no frame at all: an empty table with the schema
            records.empty().write_parquet(path)
    finally:
        if writer is not None:
            writer.close()
