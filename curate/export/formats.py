"""Training formats: records -> an Arrow table with explicit types.

Types are fixed here (not inferred) because list columns built by pandas and by polars get different
Arrow types, and the loaded dataset's features should not depend on which library built the rows.
"""
from __future__ import annotations

from typing import Literal

import polars as pl
import pyarrow as pa

Format = Literal["messages", "sharegpt", "alpaca"]
ReasoningMode = Literal["inline", "field"]

TURN = {"messages": pa.struct([("role", pa.string()), ("content", pa.string())]),
        "sharegpt": pa.struct([("from", pa.string()), ("value", pa.string())])}
METADATA = [("id", pa.string()), ("lang", pa.string()), ("kind", pa.string()),
            ("categories", pa.list_(pa.string())), ("source", pa.string()), ("source_license", pa.string())]


THINK = "<think>\n{}\n</think>\n\n{}"


def think_inline(reasoning: pl.Expr, response: pl.Expr) -> pl.Expr:
    """R1 style: the chain of thought in ``<think>`` tags before the answer (no tags when there is none)."""
    has = reasoning.is_not_null() & (reasoning.str.strip_chars() != "")
    return pl.when(has).then(pl.format(THINK, reasoning.str.strip_chars(), response)).otherwise(response)


def schema(fmt: Format, reasoning: ReasoningMode) -> pa.Schema:
    if fmt == "alpaca":
        fields = [("instruction", pa.string()), ("input", pa.string()), ("output", pa.string())]
    else:
        fields = [("messages" if fmt == "messages" else "conversations", pa.list_(TURN[fmt]))]
    if reasoning == "field":
        fields.append(("reasoning", pa.string()))
    return pa.schema(fields + METADATA)


def _turns(fmt: Format, answer: pl.Expr) -> pl.Expr:
    if fmt == "messages":
        return pl.concat_list(pl.struct(role=pl.lit("user"), content=pl.col("prompt")),
                              pl.struct(role=pl.lit("assistant"), content=answer)).alias("messages")
    return pl.concat_list(pl.struct(pl.lit("human").alias("from"), pl.col("prompt").alias("value")),
                          pl.struct(pl.lit("gpt").alias("from"), answer.alias("value"))).alias("conversations")


def to_table(rows: pl.DataFrame, fmt: Format, reasoning: ReasoningMode) -> pa.Table:
    """Records (schema columns plus ``kind``) -> the training table in ``fmt``, cast to the fixed schema."""
    answer = think_inline(pl.col("reasoning"), pl.col("response")) if reasoning == "inline" else pl.col("response")
    if fmt == "alpaca":
        main = [pl.col("prompt").alias("instruction"), pl.lit("").alias("input"), answer.alias("output")]
    else:
        main = [_turns(fmt, answer)]
    extra = [pl.col("reasoning")] if reasoning == "field" else []
    meta = [pl.col(name) for name, _ in METADATA]
    return rows.select(*main, *extra, *meta).to_arrow().cast(schema(fmt, reasoning))


# A prompt set keeps the record schema's own column names, so `curate synthesize --in <export>/data` reads it
# back as records; the answer columns (response, reasoning, response_kind) are absent: nothing is answered yet.
PROMPT_SET = [("id", pa.string()), ("source", pa.string()), ("source_id", pa.string()),
              ("source_license", pa.string()), ("lang", pa.string()), ("prompt", pa.string()),
              ("categories", pa.list_(pa.string())), ("prompt_harmful", pa.bool_()), ("label_origin", pa.string()),
              ("attack", pa.string()), ("dup_cluster", pa.string()), ("split", pa.string()), ("meta", pa.string())]


def to_prompt_table(rows: pl.DataFrame) -> pa.Table:
    """Records -> the prompt-set table (no answer columns), cast to its fixed schema."""
    return rows.select([name for name, _ in PROMPT_SET]).to_arrow().cast(pa.schema(PROMPT_SET))
