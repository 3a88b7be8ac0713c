"""Training targets from records: which rows teach the prompt model and the response-kind model what.

A row teaches the prompt model its ``categories`` when it has any; a row known to be safe
(``prompt_harmful`` false, no categories) teaches ``S00``; a harmful row without a dimension, or a row whose
harm is undecided, teaches nothing about dimensions (it still counts for the binary harmful-vs-safe score).
"""
from __future__ import annotations

import polars as pl

from curate import records
from curate.taxonomy import SAFE

KINDS = ("refusal", "safe_completion", "helpful", "harmful")


def prompt_targets(df: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``df`` (kept ones) with a ``target`` list column (dimension ids, or [S00]); others are left out."""
    kept = records.kept(df)
    target = (
        pl.when(pl.col("categories").list.len() > 0).then(pl.col("categories"))
        .when(pl.col("prompt_harmful") == False).then(pl.lit([SAFE], dtype=pl.List(pl.Utf8)))  # noqa: E712
        .otherwise(None)
    )
    return kept.with_columns(target.alias("target")).filter(pl.col("target").is_not_null())


def kind_targets(df: pl.DataFrame) -> pl.DataFrame:
    """Kept rows with a response and a known response_kind."""
    return records.kept(df).filter(
        pl.col("response").is_not_null() & (pl.col("response").str.len_chars() > 0)
        & pl.col("response_kind").is_in(list(KINDS)))
