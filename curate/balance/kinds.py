"""What a row *is* for balancing: its kind, its dimension, its template, its judge score.

One place for these facts so balance, export and the card all count the same way.
"""
from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from curate.records import load_meta
from curate.taxonomy import SAFE

KINDS = ("refusal", "safe_completion", "helpful", "general")
GENERAL_DIMENSION = "general"  # general reasoning data (math, code...), outside the taxonomy


def _meta(row: Mapping[str, Any]) -> dict[str, Any]:
    meta = row.get("meta")
    return meta if isinstance(meta, dict) else load_meta(meta)


def record_kind(row: Mapping[str, Any]) -> str | None:
    """The training-mix kind of a record (a dict with the schema's columns).

    - ``general``: general reasoning data kept for capability (``meta["collect"]["role"] == "general"``);
    - ``safe_completion``: a harmful or borderline prompt answered by a safe completion
      (``prompt_harmful`` true and ``response_kind == "safe_completion"``);
    - ``refusal``: any other harmful prompt (``prompt_harmful`` true);
    - ``helpful``: a benign look-alike from a safety source (``prompt_harmful`` false);
    - ``None``: not labelled yet (``prompt_harmful`` null), so it cannot be placed in the mix.
    """
    if (_meta(row).get("collect") or {}).get("role") == "general":
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
    wrapper recorded by collect (``meta.collect.template``), else the answer template (``meta.synthesize.template``)."""
    meta = _meta(row)
    for stage in ("collect", "synthesize"):
        value = (meta.get(stage) or {}).get("template")
        if value:
            return str(value)
    return None


def judge_score(row: Mapping[str, Any]) -> float | None:
    """The judge's score of the answer: ``meta.synthesize.judge_score``, else the mean of the judge's
    criteria in ``meta.synthesize.judge`` (policy adherence, safety, helpfulness, reasoning quality)."""
    synth = _meta(row).get("synthesize") or {}
    value = synth.get("judge_score")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    judge = synth.get("judge")
    if isinstance(judge, dict):
        scores = [float(v) for v in judge.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return sum(scores) / len(scores) if scores else None
    return None


def was_synthesized(row: Mapping[str, Any]) -> bool:
    """The answer was written by the synthesize stage (not kept from the source)."""
    synth = _meta(row).get("synthesize") or {}
    return synth.get("status") == "synthesized" or ("status" not in synth and bool(synth.get("model")))


def _meta_field(path: str) -> pl.Expr:
    return pl.col("meta").str.json_path_match(path)


def kind_expr() -> pl.Expr:
    """``record_kind`` as a column expression (the same rule, for a million rows at once)."""
    harmful = pl.col("prompt_harmful")
    return (pl.when(_meta_field("$.collect.role") == "general").then(pl.lit("general"))
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
    """``row_template`` as a column expression (an empty template counts as none)."""
    collect, synth = _meta_field("$.collect.template"), _meta_field("$.synthesize.template")
    return (pl.when(collect.is_not_null() & (collect != "")).then(collect)
              .when(synth.is_not_null() & (synth != "")).then(synth)
              .otherwise(pl.lit(None, dtype=pl.Utf8)))


def judge_scores(df: pl.DataFrame) -> pl.Series:
    """``judge_score`` per row: parsed only where the meta has a synthesize entry (rows before synthesis have none)."""
    has = df["meta"].str.contains('"synthesize"', literal=True).fill_null(False).to_numpy()
    scores = [None] * df.height
    at = has.nonzero()[0]
    for i, meta in zip(at.tolist(), df["meta"].gather(at).to_list()):
        scores[i] = judge_score({"meta": meta})
    return pl.Series("score", scores, dtype=pl.Float64)
