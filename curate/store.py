"""The run directory: parquet shards per stage, manifests, quarantine, atomic writes.

    runs/<name>/
      config.resolved.yaml       the pipeline as run (secrets redacted)
      01-collect/part-00000.parquet ... _manifest.json
      02-dedup/...
      cache/                     stage caches (LLM responses, review cursors)
      quarantine/<stage>.jsonl   input lines that could not be used, with the reason
      export/                    the dataset (export's default folder in a pipeline)
      report.html, report.md     the run report (+ report_files/)

A stage's folder is complete exactly when its ``_manifest.json`` exists: shards and manifest are
written into a temporary sibling folder and renamed into place in one step, so a killed stage
leaves no half-written output. Temporary names carry curate's own prefix (``.curate-tmp-``) and
temporary folders a marker file inside; the next run removes only leftovers that carry both, in
the run folder's own layout, never another program's files.

A run holds the run folder's lock (``.curate-run.lock``, the holder's PID inside) from start to end: a
second run into the same folder refuses with one line naming the holder. The lock is an ``flock``, so
the kernel releases it when its holder dies: a lock left by a killed run is simply taken over.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import polars as pl
import xxhash
import yaml

from curate import records
from curate.config import ConfigError

MANIFEST = "_manifest.json"
SHARDS = "shards"  # the Dask engine's per-stage shard folders, under a cache folder (removed when the stage ends)
SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|authorization)", re.I)
REDACTED = "***redacted***"
TMP_PREFIX = ".curate-tmp-"
TMP_MARKER = ".curate-tmp"  # file inside every temporary folder curate makes: only such folders are cleaned up
LOCK_FILE = ".curate-run.lock"
# A URL anywhere in a string value: its user-info and query values may be credentials.
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


class RunLocked(ConfigError):
    """Another live process holds the run folder."""


def temp_name(path: Path) -> Path:
    """A temporary sibling of ``path`` that curate (and only curate) will recognise as its own."""
    return path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")


def make_temp_folder(path: Path) -> Path:
    tmp = temp_name(path)
    tmp.mkdir()
    (tmp / TMP_MARKER).write_text(f"{os.getpid()}\n", encoding="utf-8")
    return tmp


_TEMP_OF = re.compile(re.escape(TMP_PREFIX) + r"[0-9a-f]{8}-(.+)")


def _is_temp_of_root_file(name: str) -> bool:
    """``name`` is what ``temp_name`` makes of one of the run folder's own root files (and nothing else)."""
    m = _TEMP_OF.fullmatch(name)
    return bool(m) and m.group(1) in ROOT_FILES


_RUN_FOLDERS = re.compile(r"\d{2}-[a-z_]+|export|report_files")  # the folders a run writes in its root


def _is_temp_of_run_folder(name: str) -> bool:
    """``name`` is what ``staged_folder`` makes of one of the run folder's own folders (a stage, the export). A run
    killed between the marker's removal and the rename leaves it unmarked and full (measured in make test)."""
    m = _TEMP_OF.fullmatch(name)
    return bool(m) and bool(_RUN_FOLDERS.fullmatch(m.group(1)))


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    tmp = temp_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str), encoding="utf-8")


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``target``; if the block succeeds it replaces ``target`` in one rename.

    A killed or failed block leaves ``target`` as it was; a leftover in a run folder is removed by the next run.
    The temporary folder's marker file is removed before the swap, so ``target`` carries no trace of it.
    """
    target = Path(os.path.abspath(target))  # "." and "x/.." have no usable name for a sibling
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_folder(target)
    try:
        yield tmp
        (tmp / TMP_MARKER).unlink()
        _fsync_dir(tmp)
        old = None
        if target.exists():
            old = temp_name(target)
            os.replace(target, old)
            (old / TMP_MARKER).write_text(f"{os.getpid()}\n", encoding="utf-8")  # ours now: cleanable if killed here
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


SHARD_ROWS = 100_000  # rows per parquet shard of a stage's output (and per piece a streamed stage works on)


class ShardWriter:
    """Writes records as they come into parquet shards of exactly ``shard_rows`` rows (the last one shorter), so a
    stage's output never has to be one frame in memory. The bytes depend only on the rows, not on how they came
    (each shard is rechunked before it is written), so a streamed and a whole-frame write fingerprint the same."""

    def __init__(self, folder: Path, shard_rows: int = SHARD_ROWS, compression: str = "zstd"):
        self.folder = folder
        self.shard_rows = shard_rows
        self.compression = compression
        self.manifest: dict[str, Any] | None = None  # written beside the shards when the writer closes
        self.fingerprint: str | None = None  # the data fingerprint, once closed
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0
        self._shards = 0
        self._hasher = xxhash.xxh3_128()
        self._schema: pl.Schema | None = None

    def add(self, df: pl.DataFrame) -> None:
        self._schema = self._schema or df.schema
        if df.height == 0:
            return
        self._pending.append(df)
        self._pending_rows += df.height
        while self._pending_rows >= self.shard_rows:
            whole = pl.concat(self._pending, how="vertical")
            self._write(whole.slice(0, self.shard_rows))
            rest = whole.slice(self.shard_rows)
            self._pending, self._pending_rows = ([rest] if rest.height else []), rest.height

    def link(self, shard: Path) -> None:
        """Take a finished shard of another stage as the next one, as it is (a hard link where the file system
        allows: no copy). Only between whole shards: nothing may be waiting to be written."""
        if self._pending:
            raise ValueError("link() between add()s that left rows pending")
        target = self.folder / f"part-{self._shards:05d}.parquet"
        try:
            os.link(shard, target)
        except OSError:
            shutil.copyfile(shard, target)
        self._hasher.update(target.read_bytes())
        self._shards += 1

    def _write(self, df: pl.DataFrame) -> None:
        shard = self.folder / f"part-{self._shards:05d}.parquet"
        df.rechunk().write_parquet(shard, statistics=False, compression=self.compression)
        self._hasher.update(shard.read_bytes())
        self._shards += 1

    def close(self) -> str:
        """Write what is left (one empty shard for no rows at all: the schema) and return the data fingerprint."""
        if self._pending or self._shards == 0:
            rest = pl.concat(self._pending, how="vertical") if self._pending else pl.DataFrame(schema=self._schema)
            self._write(rest)
            self._pending, self._pending_rows = [], 0
        return self._hasher.hexdigest()


@contextlib.contextmanager
def shard_writer(folder: Path, *, shard_rows: int = SHARD_ROWS, compression: str = "zstd") -> Iterator[ShardWriter]:
    """A ``ShardWriter`` into a staged copy of ``folder``, which replaces ``folder`` in one rename if the block
    succeeds (with the writer's ``manifest``, if set, and the data fingerprint in it). ``compression``: "lz4" for
    shards that only live as long as one command (a quarter less time to write, twice the bytes)."""
    with staged_folder(folder) as tmp:
        writer = ShardWriter(tmp, shard_rows, compression)
        yield writer
        fingerprint = writer.close()
        if writer.manifest is not None:
            writer.manifest = {**writer.manifest, "output_fingerprint": fingerprint}
            (tmp / MANIFEST).write_text(json.dumps(writer.manifest, ensure_ascii=False, indent=2, sort_keys=True,
                                                   default=str), encoding="utf-8")
        writer.fingerprint = fingerprint


def write_shards(df: pl.DataFrame, folder: Path, *, shard_rows: int = SHARD_ROWS,
                 manifest: dict[str, Any] | None = None) -> str:
    """Replace ``folder`` with parquet shards of ``df`` (and a manifest), atomically. Returns the data fingerprint."""
    with shard_writer(folder, shard_rows=shard_rows) as writer:
        writer.add(df)
        writer.manifest = manifest
    return writer.fingerprint


def _fsync_dir(folder: Path) -> None:
    for child in folder.rglob("*"):
        if child.is_file():
            with open(child, "rb") as fh:
                os.fsync(fh.fileno())


def shard_paths(folder: Path) -> list[Path]:
    """A stage folder's parquet shards, in row order."""
    shards = sorted(folder.glob("part-*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{folder}: no parquet shards")
    return shards


def read_shard(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """One shard's records (only ``columns``, if given); a shard written before a fact column existed gets it from
    its meta (records.conform) when it is read whole."""
    if columns is not None and set(columns) <= set(pl.read_parquet_schema(path)):
        return pl.read_parquet(path, columns=columns)
    df = records.conform(pl.read_parquet(path))
    return df if columns is None else df.select(columns)


def read_shards_derived(paths: list[Path], exprs: list[pl.Expr]) -> pl.DataFrame:
    """``exprs`` over each shard, one shard at a time, reading only the columns they name: what a frame of every
    row keeps of a column too large to hold for every row (of the answers, only whether there is one)."""
    columns = expr_columns(exprs)
    return pl.concat([read_shard(p, columns).select(exprs) for p in paths], how="vertical")


def expr_columns(exprs: list[pl.Expr]) -> list[str]:
    """The columns ``exprs`` read, in schema order."""
    named = {name for expr in exprs for name in expr.meta.root_names()}
    return [c for c in records.SCHEMA if c in named]


def read_shards(folder: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """A stage's records (only ``columns``, if given), every shard at once."""
    return pl.concat([read_shard(p, columns) for p in shard_paths(folder)], how="vertical")


def fingerprint_files(paths: list[Path]) -> str:
    """Content hash of input files (for collect's input fingerprint)."""
    hasher = xxhash.xxh3_128()
    for path in sorted(paths):
        hasher.update(str(path).encode())
        if path.is_file():
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    hasher.update(block)
    return hasher.hexdigest()


def config_hash(config: Any) -> str:
    return xxhash.xxh3_64_hexdigest(json.dumps(config, sort_keys=True, default=str).encode())


def redact_url(url: str) -> str:
    """The URL with its user-info and every query value replaced (they may be credentials, whatever their name)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a parseable URL: hide everything after the scheme
        return url.split("://", 1)[0] + "://" + REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        host = parts.hostname or ""
        netloc = f"{REDACTED}@{host}{f':{port}' if port else ''}"
    query = parts.query
    if query:
        query = urlencode([(k, REDACTED) for k, _ in parse_qsl(query, keep_blank_values=True)], safe="*")
        query = query or REDACTED  # a query that is not key=value pairs is hidden whole
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment and REDACTED))


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through ``redact_url``."""
    return URL.sub(lambda m: redact_url(m.group(0)), text) if "://" in text else text


def redact(value: Any) -> Any:
    """Copy of a config with secrets replaced: values of secret-looking keys (keys naming an env var, ``*_env``,
    are kept), and the user-info and query values of every URL inside any string value."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, str) and SECRET_KEY.search(str(key)) and not str(key).endswith("_env"):
                out[key] = REDACTED
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


STAGE_FOLDER = re.compile(r"^(\d{2})-(.+)$")
RECIPE = "config.resolved.yaml"
REPORT, REPORT_MD, SHORTFALL = "report.html", "report.md", "shortfall.csv"
ROOT_FILES = (RECIPE, REPORT, REPORT_MD, SHORTFALL)  # the files a run writes in its folder's root, each atomically


@dataclass(frozen=True)
class FinishedStage:
    """A stage folder with a readable manifest (a finished stage), as found in a run directory."""

    index: int
    name: str
    path: Path
    manifest: dict[str, Any]


class RunStore:
    """One run directory: the only code that knows its layout."""

    shard_rows = SHARD_ROWS  # rows per shard of a stage's output, and so per piece a shardable stage runs on

    def __init__(self, root: Path, *, read_only: bool = False):
        self.root = Path(root)
        if read_only:  # a run may be in progress in it: create nothing, clean up nothing
            if not self.root.is_dir():
                raise FileNotFoundError(f"{self.root}: no such run directory")
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(exist_ok=True)

    @classmethod
    def existing(cls, root: Path) -> "RunStore":
        """An existing run directory, opened to read."""
        return cls(root, read_only=True)

    @property
    def recipe_path(self) -> Path:
        """The pipeline as run (secrets redacted)."""
        return self.root / RECIPE

    @property
    def report_path(self) -> Path:
        """The run report (``report.md`` and ``report_files/`` beside it)."""
        return self.root / REPORT

    @property
    def export_dir(self) -> Path:
        """Where a pipeline's export stage writes the dataset unless told otherwise."""
        return self.root / "export"

    @property
    def eval_dir(self) -> Path:
        """Eval results of models trained on this run (``curate eval --out <run>/eval/<name>``): the report shows them."""
        return self.root / "eval"

    def eval_results(self) -> list[Path]:
        return sorted(p.parent for p in self.eval_dir.glob("*/summary.json"))

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @contextlib.contextmanager
    def locked(self) -> Iterator["RunStore"]:
        """Hold the run folder for the block (refuse if a live process holds it), then clean up stale temp."""
        path = self.root / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                raise RunLocked(f"{self.root}: another curate run (PID {holder}) is using this run folder; "
                                "wait for it to finish or choose another --run-dir") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self.remove_stale_temp()  # only now: a live run's temp folders are never touched
            yield self
        finally:
            os.close(fd)  # releases the flock; the file stays (removing it would race a run taking it over)

    def remove_stale_temp(self) -> None:
        """Remove leftovers of killed runs: curate's marked temp folders beside stage outputs, the temp folders and
        files of the run folder's own entries (by exact name), and temp files in the folders only curate writes
        (quarantine/)."""
        for stale in self.root.glob(f"{TMP_PREFIX}*"):
            if stale.is_dir() and not stale.is_symlink() and ((stale / TMP_MARKER).is_file()
                                                              or _is_temp_of_run_folder(stale.name)):
                shutil.rmtree(stale, ignore_errors=True)
            elif stale.is_dir() and not stale.is_symlink() and _TEMP_OF.fullmatch(stale.name):
                with contextlib.suppress(OSError):  # killed between mkdir and its marker: rmdir removes it only if
                    stale.rmdir()                   # it is empty, so nothing anyone wrote can go
            elif stale.is_file() and not stale.is_symlink() and _is_temp_of_root_file(stale.name):
                stale.unlink(missing_ok=True)  # a killed atomic write of the recipe, the report or the shortfall
        if self.quarantine_dir.is_dir():
            for stale in self.quarantine_dir.glob(f"{TMP_PREFIX}*.jsonl"):
                stale.unlink(missing_ok=True)
        shutil.rmtree(self.cache_dir / SHARDS, ignore_errors=True)  # left by a run killed mid-stage

    def stage_dir(self, index: int, name: str) -> Path:
        return self.root / f"{index:02d}-{name}"

    def manifest(self, index: int, name: str) -> dict[str, Any] | None:
        path = self.stage_dir(index, name) / MANIFEST
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            return None  # unreadable manifest = stage not finished

    def finished_stages(self) -> list[FinishedStage]:
        """Every finished stage folder in pipeline order (an unreadable manifest is an unfinished stage)."""
        out = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and STAGE_FOLDER.match(p.name)):
            index, name = STAGE_FOLDER.match(folder.name).groups()
            manifest = self.manifest(int(index), name)
            if manifest is not None:
                out.append(FinishedStage(int(index), name, folder, manifest))
        return out

    def manifests(self) -> list[dict[str, Any]]:
        return [stage.manifest for stage in self.finished_stages()]

    def write_stage(self, index: int, name: str, df: pl.DataFrame, manifest: dict[str, Any]) -> str:
        return write_shards(df, self.stage_dir(index, name), shard_rows=self.shard_rows, manifest=manifest)

    def stage_writer(self, index: int, name: str) -> contextlib.AbstractContextManager[ShardWriter]:
        """A stage's output written as it comes (``shard_writer``): the folder appears only if the block succeeds."""
        return shard_writer(self.stage_dir(index, name), shard_rows=self.shard_rows)

    def read_stage(self, index: int, name: str, columns: list[str] | None = None) -> pl.DataFrame:
        return read_shards(self.stage_dir(index, name), columns)

    def write_config(self, config: dict[str, Any]) -> None:
        with atomic_path(self.recipe_path) as tmp:
            tmp.write_text(yaml.safe_dump(redact(config), allow_unicode=True, sort_keys=False), encoding="utf-8")

    def write_quarantine(self, stage: str, rows: list[dict[str, Any]]) -> Path | None:
        path = self.quarantine_dir / f"{stage}.jsonl"
        if not rows:
            path.unlink(missing_ok=True)
            return None
        self.quarantine_dir.mkdir(exist_ok=True)
        return write_quarantine(path, rows)


def write_quarantine(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Quarantined input lines as JSON lines, written atomically (a run folder's and a single-stage run's alike)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


class QuarantineBuffer:
    """Collects quarantined input lines during a stage; written with the stage's output."""

    def __init__(self, stage: str):
        self.stage = stage
        self.rows: list[dict[str, Any]] = []

    def __call__(self, *, source: str, location: str, reason: str, raw: str | None = None) -> None:
        if raw is not None and len(raw) > 2000:
            raw = raw[:2000] + f"... [{len(raw) - 2000} more characters]"
        self.rows.append({"stage": self.stage, "source": source, "location": location, "reason": reason,
                          "raw": raw, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            key = row["reason"].split(":")[0]
            out[key] = out.get(key, 0) + 1
        return out
