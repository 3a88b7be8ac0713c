"""Robust readers for raw source files: every line becomes a row or a quarantined line with a reason.

They never raise on bad content: encoding problems (BOMs, GBK/GB18030, invalid UTF-8), malformed JSON,
over-deep nesting, over-long lines, truncated gzip and unreadable paths come back as ``BadLine``.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

MAX_LINE_BYTES = 8 * 1024 * 1024  # a longer line is quarantined, not parsed
MAX_FILE_BYTES_IN_MEMORY = 512 * 1024 * 1024  # whole-file formats (json array, csv) above this are refused
GZIP_MAGIC = b"\x1f\x8b"
BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class RawRow:
    location: str  # "file:line" or "file:row"
    data: dict[str, Any]
    encoding: str = "utf-8"


@dataclass
class BadLine:
    location: str
    reason: str
    raw: str | None = None


def _open_binary(path: Path):
    """The file's bytes, decompressed when it is gzip: it starts with gzip's magic and its first bytes decompress
    (a text file whose first line happens to start with those two bytes is read as it is)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == GZIP_MAGIC:
        stream = gzip.open(path, "rb")
        try:
            stream.read(1)
            stream.seek(0)  # rewinds to the start of the stream
            return stream
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
            stream.close()
    return open(path, "rb")


def decode_line(data: bytes) -> tuple[str, str] | None:
    """Decode one line: UTF-8 (BOM stripped), else GB18030 (a superset of GBK). None when neither fits."""
    for bom, _ in BOMS[:1]:
        if data.startswith(bom):
            data = data[len(bom):]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    # GB18030 decodes many byte soups; accept only if most characters are CJK or ASCII.
    plausible = sum(1 for ch in text if ch.isascii() or "\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f"
                    or "\uff00" <= ch <= "\uffef")
    return (text, "gb18030") if plausible >= 0.9 * max(len(text), 1) else None


def decode_file(data: bytes) -> tuple[str, str] | None:
    """Decode a whole file: BOMs, UTF-8, then charset-normalizer's best guess (GBK, Big5, UTF-16, ...)."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding), encoding
            except UnicodeDecodeError:
                return None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        return None
    return str(best), best.encoding


def _preview(data: bytes | str, limit: int = 300) -> str:
    if isinstance(data, bytes):
        data = data[:limit].decode("utf-8", errors="replace")
    return data[:limit]


def iter_jsonl(path: Path, label: str) -> Iterator[RawRow | BadLine]:
    try:
        fh = _open_binary(path)
    except OSError as exc:
        yield BadLine(label, f"unreadable file: {exc.strerror or exc}")
        return
    lineno = 0
    with fh:
        try:
            while True:
                line = fh.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                lineno += 1
                where = f"{label}:{lineno}"
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    skipped = len(line)
                    while line and not line.endswith(b"\n"):  # drain the rest of the long line
                        line = fh.readline(MAX_LINE_BYTES)
                        skipped += len(line)
                    yield BadLine(where, f"line too long: {skipped:,} bytes (limit {MAX_LINE_BYTES:,})")
                    continue
                if not line.strip():
                    continue
                yield _parse_json_line(line, where)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            yield BadLine(f"{label}:{lineno + 1}", f"file truncated or corrupt after line {lineno}: {exc}")


def _parse_json_line(line: bytes, where: str) -> RawRow | BadLine:
    decoded = decode_line(line.rstrip(b"\r\n"))
    if decoded is None:
        return BadLine(where, "invalid encoding: neither UTF-8 nor GB18030", _preview(line))
    text, encoding = decoded
    try:
        value = json.loads(text)
    except RecursionError:
        return BadLine(where, "invalid JSON: nested too deeply", _preview(text))
    except json.JSONDecodeError as exc:
        return BadLine(where, f"invalid JSON: {exc.msg} at column {exc.colno}", _preview(text))
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        return BadLine(where, f"invalid JSON value: {str(exc)[:120]}", _preview(text))
    if not isinstance(value, dict):
        return BadLine(where, f"invalid JSON: expected an object, got {type(value).__name__}", _preview(text))
    return RawRow(where, value, encoding)


def _read_small(path: Path, label: str) -> tuple[str, str] | BadLine:
    try:
        with _open_binary(path) as fh:
            data = fh.read(MAX_FILE_BYTES_IN_MEMORY + 1)
    except (OSError, EOFError, zlib.error) as exc:
        return BadLine(label, f"unreadable file: {exc}")
    if len(data) > MAX_FILE_BYTES_IN_MEMORY:
        return BadLine(label, f"file too large for this format (> {MAX_FILE_BYTES_IN_MEMORY:,} bytes); use jsonl or parquet")
    decoded = decode_file(data)
    if decoded is None:
        return BadLine(label, "invalid encoding: could not detect the file's text encoding", _preview(data))
    return decoded


def iter_json_array(path: Path, label: str) -> Iterator[RawRow | BadLine]:
    loaded = _read_small(path, label)
    if isinstance(loaded, BadLine):
        yield loaded
        return
    text, encoding = loaded
    try:
        value = json.loads(text)
    except RecursionError:
        yield BadLine(label, "invalid JSON: nested too deeply")
        return
    except json.JSONDecodeError as exc:
        yield BadLine(f"{label}:{exc.lineno}", f"invalid JSON: {exc.msg} at column {exc.colno}")
        return
    except ValueError as exc:
        yield BadLine(label, f"invalid JSON value: {str(exc)[:120]}")
        return
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        yield BadLine(label, f"invalid JSON: expected an array of objects, got {type(value).__name__}")
        return
    for i, item in enumerate(value):
        where = f"{label}:[{i}]"
        if isinstance(item, dict):
            yield RawRow(where, item, encoding)
        else:
            yield BadLine(where, f"invalid JSON: expected an object, got {type(item).__name__}", _preview(str(item)))


def iter_csv(path: Path, label: str, *, header: bool = True, fieldnames: list[str] | None = None,
             delimiter: str = ",") -> Iterator[RawRow | BadLine]:
    loaded = _read_small(path, label)
    if isinstance(loaded, BadLine):
        yield loaded
        return
    text, encoding = loaded
    if "\x00" in text:
        text = text.replace("\x00", "")  # the csv module refuses NUL; NULs carry no text
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        names = fieldnames or (next(reader) if header else None)
    except StopIteration:
        return
    except csv.Error as exc:
        yield BadLine(f"{label}:1", f"invalid CSV header: {exc}")
        return
    names = [n.strip() for n in names] if names else None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield BadLine(f"{label}:{reader.line_num}", f"invalid CSV: {exc}")
            continue
        where = f"{label}:{reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if names is None:
            yield RawRow(where, {str(i): cell for i, cell in enumerate(row)}, encoding)
        elif len(row) != len(names):
            yield BadLine(where, f"invalid CSV: {len(row)} fields, header has {len(names)}", _preview(",".join(row)))
        else:
            yield RawRow(where, dict(zip(names, row)), encoding)


def iter_parquet(path: Path, label: str) -> Iterator[RawRow | BadLine]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        row = 0
        for batch in pf.iter_batches(batch_size=10_000):
            for item in _batch_rows(batch):
                row += 1
                yield RawRow(f"{label}:{row}", item) if isinstance(item, dict) else BadLine(f"{label}:{row}", item)
    except Exception as exc:  # corrupt parquet: arrow raises many types
        yield BadLine(label, f"invalid parquet: {exc}")


def _batch_rows(batch) -> Iterator[dict[str, Any] | str]:
    """A batch's rows as dicts; when Arrow cannot convert the batch (a timestamp out of Python's range, ...),
    row by row, with the reason in place of a row it cannot convert (so one value costs one row, not the file)."""
    try:
        yield from batch.to_pylist()
        return
    except Exception:  # noqa: BLE001 - retried row by row below
        pass
    for i in range(batch.num_rows):
        try:
            yield batch.slice(i, 1).to_pylist()[0]
        except Exception as exc:  # noqa: BLE001 - arrow raises many types
            yield f"value Arrow cannot convert: {type(exc).__name__}: {str(exc)[:120]}"


READERS = {"jsonl": iter_jsonl, "json": iter_json_array, "csv": iter_csv, "parquet": iter_parquet}


def sniff_format(path: Path) -> str | None:
    name = path.name.lower()
    for ext in (".gz", ".gzip"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".csv", "csv"),
                        (".tsv", "csv"), (".parquet", "parquet")):
        if name.endswith(suffix):
            return fmt
    return None


def list_files(path: Path, label: str) -> Iterator[Path | BadLine]:
    """Files under ``path`` (itself if a file), sorted, without following symlinked folders (no loops)."""
    try:
        if path.is_file():
            yield path
            return
        if not path.exists():
            yield BadLine(label, "no such file or folder")
            return
    except OSError as exc:  # e.g. ELOOP: a symlink loop
        yield BadLine(label, f"unreadable path: {exc.strerror or exc}")
        return
    found = []
    for root, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            found.append(Path(root) / name)
    for file in sorted(found):
        try:
            if file.is_file():
                yield file
            else:
                yield BadLine(str(file), "not a regular file (broken or looping symlink)")
        except OSError as exc:
            yield BadLine(str(file), f"unreadable path: {exc.strerror or exc}")
