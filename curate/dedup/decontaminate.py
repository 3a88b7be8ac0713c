"""Decontamination: training rows whose shingles overlap an eval item's (XSTest, HarmBench, ...).

Overlap is the overlap coefficient |A & B| / min(|A|, |B|) of the two shingle sets: 1.0 when an eval
item sits whole inside a training row (a jailbreak template wrapped around a test prompt) or a training
row is a cut-down eval item, which plain Jaccard would miss. Shingling is the dedup shingling.
"""
from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from curate.errors import UsageError
from curate.dedup.shingles import Shingles, Shingling, positions, shingle

ID_COLUMNS = ("id", "source_id")
# Text columns of common eval sets (XSTest, HarmBench, StrongREJECT, AdvBench, ...), tried in this order
# after --against-field, so one run can read eval files that name their text column differently.
TEXT_COLUMNS = ("prompt", "Behavior", "forbidden_prompt", "goal", "question", "instruction", "text")


class EvalSetError(UsageError):
    """An --against file cannot be read or has no text column; the message names the file."""


@dataclass
class EvalSet:
    ids: list[str]  # "<file name>:<id or row number>"
    texts: list[str]
    columns: dict[str, str]  # file name -> the text column read


def _read_table(path: Path) -> pl.DataFrame:
    name = path.name.lower()
    if path.is_dir():
        shards = sorted(path.glob("*.parquet"))
        if not shards:
            raise EvalSetError(f"{path}: folder has no .parquet shards")
        return pl.concat([pl.read_parquet(s) for s in shards], how="diagonal_relaxed")
    if name.endswith(".parquet"):
        return pl.read_parquet(path)
    if name.endswith(".csv"):
        return pl.read_csv(path, infer_schema=False)
    if name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
        raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        if name.endswith((".json", ".json.gz")):
            return pl.read_json(io.BytesIO(raw))
        return pl.read_ndjson(io.BytesIO(raw), infer_schema_length=None)
    raise EvalSetError(f"{path}: unsupported eval set type (use .jsonl, .jsonl.gz, .json, .csv, .parquet or a "
                       "folder of parquet shards)")


def read_eval_sets(paths: list[Path], field: str) -> EvalSet:
    """All items of all eval files. The text is column `field`, else the first of TEXT_COLUMNS the file
    has; the id is `id`/`source_id`, else the row number."""
    ids: list[str] = []
    texts: list[str] = []
    columns: dict[str, str] = {}
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise EvalSetError(f"{path}: no such file or folder")
        try:
            df = _read_table(path)
        except EvalSetError:
            raise
        except Exception as exc:  # polars parse errors: one line naming the file
            raise EvalSetError(f"{path}: cannot read eval set: {exc}") from exc
        column = next((c for c in (field, *TEXT_COLUMNS) if c in df.columns), None)
        if column is None:
            raise EvalSetError(f"{path}: no text column {field!r} (columns: {', '.join(df.columns)}); "
                               "choose one with --against-field")
        columns[path.name] = column
        id_col = next((c for c in ID_COLUMNS if c in df.columns), None)
        row_ids = df[id_col].cast(pl.Utf8).to_list() if id_col else [None] * df.height
        for row, (rid, text) in enumerate(zip(row_ids, df[column].cast(pl.Utf8).to_list())):
            if text and text.strip():
                ids.append(f"{path.name}:{rid if rid is not None else row}")
                texts.append(text)
    return EvalSet(ids, texts, columns)


ROW_BLOCK = 100_000  # training rows per block: bounds the (row, eval item) expansion in memory


def best_overlap(train: Shingles, evals: Shingles) -> tuple[np.ndarray, np.ndarray]:
    """For each training row: (the highest overlap with any eval item, that item's index or -1)."""
    best = np.zeros(train.rows, dtype=np.float64)
    which = np.full(train.rows, -1, dtype=np.int64)
    for r0 in range(0, train.rows, ROW_BLOCK):
        r1 = min(r0 + ROW_BLOCK, train.rows)
        lo, hi = train.offsets[r0], train.offsets[r1]
        block = Shingles(train.values[lo:hi], train.offsets[r0:r1 + 1] - lo)
        best[r0:r1], which[r0:r1] = _best_overlap(block, evals)
    return best, which


def _best_overlap(train: Shingles, evals: Shingles) -> tuple[np.ndarray, np.ndarray]:
    best = np.zeros(train.rows, dtype=np.float64)
    which = np.full(train.rows, -1, dtype=np.int64)
    if evals.rows == 0 or train.rows == 0:
        return best, which
    eval_owner = np.repeat(np.arange(evals.rows, dtype=np.int64), evals.sizes())
    order = np.argsort(evals.values, kind="stable")
    ev_vals, ev_owner = evals.values[order], eval_owner[order]
    left = np.searchsorted(ev_vals, train.values, "left")
    right = np.searchsorted(ev_vals, train.values, "right")
    hits = np.nonzero(right > left)[0]
    if len(hits) == 0:
        return best, which
    train_owner = np.repeat(np.arange(train.rows, dtype=np.int64), train.sizes())[hits]
    span = (right - left)[hits]
    # expand each hit into (training row, eval item) for every eval item holding that shingle
    rows = np.repeat(train_owner, span)
    items = ev_owner[positions(left[hits], span)]
    code, shared = np.unique(rows * evals.rows + items, return_counts=True)
    rows, items = code // evals.rows, code % evals.rows
    overlap = shared / np.minimum(train.sizes()[rows], evals.sizes()[items])
    # best per row; ties go to the first eval item (stable, deterministic)
    order = np.lexsort((items, -overlap, rows))
    rows, items, overlap = rows[order], items[order], overlap[order]
    first_of_row = np.ones(len(rows), dtype=bool)
    first_of_row[1:] = rows[1:] != rows[:-1]
    best[rows[first_of_row]] = overlap[first_of_row]
    which[rows[first_of_row]] = items[first_of_row]
    return best, which


def eval_shingles(evals: EvalSet, spec: Shingling) -> Shingles:
    return shingle(pl.Series("t", evals.texts, dtype=pl.Utf8), spec)
