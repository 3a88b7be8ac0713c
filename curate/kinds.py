"""What a row *is* in the training mix: its kind, its stratum dimension, its template, from record columns.

One place for these rules so balance, export and the card all count the same way; each rule has a row form
(a dict with the schema's columns) and a column form (a polars expression) that say the same.
"""
from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from curate.taxonomy import SAFE

KINDS = ("refusal", "safe_completion", "helpful", "general")
GENERAL_DIMENSION = "general"  # general reasoning data (math, code...), outside the taxonomy


def record_kind(row: Mapping[str, Any]) -> str | None:
    """The training-mix kind of a record (a dict with the schema's columns).

    - ``general``: general reasoning data kept for capability (``role == "general"``);
    - ``safe_completion``: a harmful or borderline prompt answered by a safe completion
      (``prompt_harmful`` true and ``response_kind == "safe_completion"``);
    - ``refusal``: any other harmful prompt (``prompt_harmful`` true);
    - ``helpful``: a benign look-alike from a safety source (``prompt_harmful`` false);
    - ``None``: not labelled yet (``prompt_harmful`` null), so it cannot be placed in the mix.
    """
    if row.get("role") == "general":
        return "general"
    harmful = row.get("prompt_harmful")
    if harmful is True:
        return "safe_completion" if row.get("response_kind") == "safe_completion" else "refusal"
    if harmful is False:
        return "helpful"
    return None


def row_dimension(row: Mapping[str, Any], kind: str | None) -> str:
    """The stratum dimension: the primary (first) category; S00 for an uncategorised safety row."""
    if kind == "general":
        return GENERAL_DIMENSION
    categories = row.get("categories") or []
    return categories[0] if categories else SAFE  # a safety row with no harm category


def row_template(row: Mapping[str, Any]) -> str | None:
    """The template a row came from, for diversity (not the same one twice): the prompt template or attack
    wrapper (``prompt_template``), else the answer template (``answer_template``); an empty one counts as none."""
    return row.get("prompt_template") or row.get("answer_template") or None


def kind_expr() -> pl.Expr:
    """``record_kind`` as a column expression (the same rule, for a million rows at once)."""
    harmful = pl.col("prompt_harmful")
    return (pl.when(pl.col("role") == "general").then(pl.lit("general"))
              .when(harmful).then(pl.when(pl.col("response_kind") == "safe_completion").then(pl.lit("safe_completion"))
                                    .otherwise(pl.lit("refusal")))
              .when(harmful.not_()).then(pl.lit("helpful"))
              .otherwise(pl.lit(None, dtype=pl.Utf8)))


def dimension_expr(kind: pl.Expr) -> pl.Expr:
    """``row_dimension`` as a column expression."""
    first = pl.col("categories").list.first()
    return (pl.when(kind == "general").then(pl.lit(GENERAL_DIMENSION))
              .otherwise(pl.when(first.is_not_null()).then(first).otherwise(pl.lit(SAFE))))


def template_expr() -> pl.Expr:
    """``row_template`` as a column expression."""
    prompt, answer = pl.col("prompt_template"), pl.col("answer_template")
    return (pl.when(prompt.is_not_null() & (prompt != "")).then(prompt)
              .when(answer.is_not_null() & (answer != "")).then(answer)
              .otherwise(pl.lit(None, dtype=pl.Utf8)))
