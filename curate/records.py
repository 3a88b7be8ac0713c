"""The record schema: one row per candidate training example, in one place.

Every stage reads and writes frames with exactly these columns. Stages never delete rows:
a stage that rejects a record sets ``drop_reason`` (first reason wins) and keeps the row,
so every input record is accounted for at the end of a run (the funnel).

``category_scores`` and ``meta`` are JSON strings: they stay schema-stable whatever taxonomy
or stage wrote them. ``meta`` is namespaced by stage (``{"collect": {...}, "dedup": {...}}``).
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable

import numpy as np
import polars as pl
import xxhash

from curate.errors import RunFailed

SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Utf8,
    "source": pl.Utf8,
    "source_id": pl.Utf8,
    "source_license": pl.Utf8,
    "lang": pl.Utf8,
    "prompt": pl.Utf8,
    "response": pl.Utf8,
    "reasoning": pl.Utf8,
    "source_labels": pl.List(pl.Utf8),
    "categories": pl.List(pl.Utf8),
    "category_scores": pl.Utf8,
    "label_origin": pl.Utf8,
    "prompt_harmful": pl.Boolean,
    "response_kind": pl.Utf8,
    "attack": pl.Utf8,
    "dup_cluster": pl.Utf8,
    "is_duplicate": pl.Boolean,
    "drop_reason": pl.Utf8,
    "split": pl.Utf8,
    "meta": pl.Utf8,
}
COLUMNS = list(SCHEMA)

NON_NULL = ("id", "source", "source_id", "lang", "prompt")
ALLOWED_VALUES: dict[str, frozenset[str]] = {
    "label_origin": frozenset({"source", "classifier", "judge", "human"}),
    "response_kind": frozenset({"refusal", "safe_completion", "helpful", "harmful"}),
    "split": frozenset({"train", "test"}),
}


class SchemaError(RunFailed, ValueError):
    """A frame does not follow the record schema; the message names the column and the row."""


def make_id(source: str, source_id: str) -> str:
    """Stable record id: the same (source, source_id) gives the same id in every run."""
    return xxhash.xxh3_128_hexdigest(json.dumps([source, source_id], ensure_ascii=False).encode("utf-8"))[:24]


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Add missing schema columns as nulls, cast to the schema types, order columns.

    Extra columns are an error: a stage that needs more keeps it in ``meta``.
    """
    extra = [c for c in df.columns if c not in SCHEMA]
    if extra:
        raise SchemaError(f"column {extra[0]!r} is not in the record schema (keep stage data in 'meta')")
    exprs = []
    for name, dtype in SCHEMA.items():
        if name in df.columns:
            exprs.append(pl.col(name).cast(dtype, strict=False) if df.schema[name] != dtype else pl.col(name))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    out = df.select(exprs)
    return out.with_columns(
        pl.col("source_labels").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))),
        pl.col("categories").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))),
        pl.col("is_duplicate").fill_null(False),
        pl.col("meta").fill_null("{}"),
    )


def validate(df: pl.DataFrame, where: str = "records") -> pl.DataFrame:
    """Check a frame against the schema; raise SchemaError naming the offending column and row."""
    for name, dtype in SCHEMA.items():
        if name not in df.columns:
            raise SchemaError(f"{where}: missing column {name!r}")
        if df.schema[name] != dtype:
            raise SchemaError(f"{where}: column {name!r} has type {df.schema[name]}, expected {dtype}")
    extra = [c for c in df.columns if c not in SCHEMA]
    if extra:
        raise SchemaError(f"{where}: unexpected column {extra[0]!r}")
    for name in NON_NULL:
        bad = df.with_row_index("_row").filter(pl.col(name).is_null() | (pl.col(name) == ""))
        if bad.height:
            row = bad.row(0, named=True)
            raise SchemaError(f"{where}: column {name!r} is empty in row {row['_row']} (id={row['id']!r})")
    for name, allowed in ALLOWED_VALUES.items():
        bad = df.with_row_index("_row").filter(pl.col(name).is_not_null() & ~pl.col(name).is_in(list(allowed)))
        if bad.height:
            row = bad.row(0, named=True)
            raise SchemaError(
                f"{where}: column {name!r} has value {row[name]!r} in row {row['_row']} (id={row['id']!r}); "
                f"allowed: {sorted(allowed)}"
            )
    dup = df.group_by("id").len().filter(pl.col("len") > 1)
    if dup.height:
        raise SchemaError(f"{where}: id {dup['id'][0]!r} appears {dup['len'][0]} times (ids must be unique)")
    return df


def mark_dropped(df: pl.DataFrame, mask: pl.Expr, reason: str) -> pl.DataFrame:
    """Set ``drop_reason`` where ``mask`` holds and no earlier stage already dropped the row."""
    return df.with_columns(
        pl.when(mask & pl.col("drop_reason").is_null()).then(pl.lit(reason)).otherwise(pl.col("drop_reason")).alias("drop_reason")
    )


def kept(df: pl.DataFrame) -> pl.DataFrame:
    """Rows no stage has rejected."""
    return df.filter(pl.col("drop_reason").is_null())


def load_meta(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        out = json.loads(value)
    except json.JSONDecodeError:
        return {"_unparsed": value}
    return out if isinstance(out, dict) else {"_value": out}


def dump_meta(meta: dict[str, Any]) -> str:
    return json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str)


def concat_text(*parts: str | pl.Expr) -> pl.Expr:
    """Text pieces (literal strings or string expressions) joined; a null piece makes the result null."""
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p.cast(pl.Utf8) for p in parts])


def with_stage_meta_json(df: pl.DataFrame, stage: str, values: pl.Series) -> pl.DataFrame:
    """Columnar ``with_stage_meta``: ``values`` holds each row's entry as JSON object text (null: unchanged).

    A row whose meta is a JSON object without a ``stage`` key gets the entry spliced into its text (no per-row
    parse: a million rows take a second, not a minute); the rest (the key already there, or meta that is not an
    object) are merged by ``with_stage_meta``."""
    meta = pl.col("meta").fill_null("{}").str.strip_chars()
    key = json.dumps(stage, ensure_ascii=False)
    obj = meta.str.starts_with("{") & meta.str.ends_with("}")
    spliceable = obj & ~meta.str.contains(f"{re.escape(key)}\\s*:")
    empty = meta.str.strip_chars("{} \n\t") == ""
    value = pl.col("_entry")
    spliced = (pl.when(empty).then(concat_text("{", key, ": ", value, "}"))
                 .otherwise(concat_text(meta.str.slice(0, meta.str.len_chars() - 1), ", ", key, ": ", value, "}")))
    out = df.with_columns(values.alias("_entry")).with_columns(
        pl.when(value.is_null()).then(pl.col("meta")).when(spliceable).then(spliced).otherwise(pl.col("meta"))
          .alias("meta"), (value.is_not_null() & ~spliceable).alias("_slow"))
    slow = np.flatnonzero(out["_slow"].to_numpy())
    if len(slow):
        part = with_stage_meta(out[slow], stage, [json.loads(v) for v in out["_entry"].gather(slow).to_list()])
        out = out.with_columns(out["meta"].scatter(slow, part["meta"]))
    return out.drop("_entry", "_slow")


def with_stage_meta(df: pl.DataFrame, stage: str, values: Iterable[dict[str, Any] | None]) -> pl.DataFrame:
    """Merge per-row dicts into ``meta[stage]`` (None leaves the row's meta unchanged)."""
    merged = []
    for old, new in zip(df["meta"].to_list(), values):
        if not new:
            merged.append(old if old is not None else "{}")
            continue
        meta = load_meta(old)
        meta.setdefault(stage, {}).update(new)
        merged.append(dump_meta(meta))
    return df.with_columns(pl.Series("meta", merged, dtype=pl.Utf8))
