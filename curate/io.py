"""Reading and writing record tables: .jsonl, .jsonl.gz, .csv, .parquet, or a folder of parquet shards.

These read files that already hold curate records (a stage's output). Raw source files with their own
fields go through the collect stage instead, which quarantines what it cannot parse.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

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
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    fmt = table_format(path)
    try:
        if fmt == "parquet-dir":
            shards = sorted(path.glob("*.parquet"))
            if not shards:
                raise InputError(f"{path}: folder has no .parquet shards")
            df = pl.concat([pl.read_parquet(s) for s in shards], how="diagonal_relaxed")
        elif fmt == "parquet":
            df = pl.read_parquet(path)
        elif fmt == "csv":
            df = pl.read_csv(path, infer_schema=False)
            df = _decode_text_columns(df)
        else:
            df = _read_json_lines(path, gz=fmt == "jsonl.gz", array=fmt == "json")
    except InputError:
        raise
    except Exception as exc:  # polars/arrow parse errors: one clear line
        raise InputError(f"{path}: cannot read as {fmt}: {exc}") from exc
    try:
        return records.conform(df)
    except records.SchemaError as exc:
        raise InputError(f"{path}: {exc}") from exc


def _read_json_lines(path: Path, gz: bool, array: bool) -> pl.DataFrame:
    if not gz and not array:
        fast = _read_ndjson_fast(path)
        if fast is not None:
            return fast
    opener = gzip.open if gz else open
    with opener(path, "rt", encoding="utf-8") as fh:
        if array:
            rows = json.load(fh)
        else:
            rows = []
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
    for row in rows:
        for col in JSON_COLUMNS:
            if col in row and not isinstance(row[col], (str, type(None))):
                row[col] = records.dump_meta(row[col])
    return pl.DataFrame(rows, schema_overrides={c: records.SCHEMA[c] for c in records.SCHEMA if rows and c in rows[0]},
                        infer_schema_length=None) if rows else records.empty()


def _read_ndjson_fast(path: Path) -> pl.DataFrame | None:
    """Polars' native JSON-lines reader (a tenth of the time of a ``json.loads`` per line, which is most of a
    small ``curate dedup``), or None when the file needs the per-line reader: a bad line (which it names), a
    nested ``meta`` object to turn into text, a value that does not fit its column, an empty file."""
    try:
        df = pl.read_ndjson(path, infer_schema_length=None)
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
    path = Path(path)
    if path.suffix == "" and not path.name.endswith(".jsonl.gz"):
        from curate.store import MANIFEST, write_shards

        # The folder is replaced whole: only ever one that holds nothing but shards (ours, or nothing at all).
        if path.is_dir() and any(not (p.name.startswith("part-") and p.suffix == ".parquet") and p.name != MANIFEST
                                 for p in path.iterdir()):
            raise InputError(f"{path}: folder holds files that are not record shards; curate replaces an output "
                             "folder whole, so choose a new or empty folder")
        write_shards(df, path, shard_rows=shard_rows)
        return path
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            df.write_parquet(tmp)
        elif fmt == "csv":
            df.with_columns([pl.Series(c, [json.dumps(v, ensure_ascii=False) for v in df[c].to_list()], dtype=pl.Utf8)
                             for c in LIST_COLUMNS]).write_csv(tmp)
        elif fmt in ("jsonl", "jsonl.gz"):
            opener = gzip.open if fmt == "jsonl.gz" else open
            with opener(tmp, "wt", encoding="utf-8") as fh:
                for row in df.iter_rows(named=True):
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            raise InputError(f"{path}: write .jsonl, .jsonl.gz, .csv, .parquet or a folder")
    return path

