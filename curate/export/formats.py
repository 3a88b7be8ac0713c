"""Training formats: records -> an Arrow table with explicit types.

Types are fixed here (not inferred) because list columns built by pandas and by polars get different
Arrow types, and the loaded dataset's features should not depend on which library built the rows.
"""
from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa

Format = Literal["messages", "sharegpt", "alpaca"]
ReasoningMode = Literal["inline", "field"]

TURN = {"messages": pa.struct([("role", pa.string()), ("content", pa.string())]),
        "sharegpt": pa.struct([("from", pa.string()), ("value", pa.string())])}
METADATA = [("id", pa.string()), ("lang", pa.string()), ("kind", pa.string()),
            ("categories", pa.list_(pa.string())), ("source", pa.string()), ("source_license", pa.string())]


def think_inline(reasoning: str | None, response: str) -> str:
    """R1 style: the chain of thought in ``<think>`` tags before the answer (no tags when there is none)."""
    if reasoning and reasoning.strip():
        return f"<think>\n{reasoning.strip()}\n</think>\n\n{response}"
    return response


def schema(fmt: Format, reasoning: ReasoningMode) -> pa.Schema:
    if fmt == "alpaca":
        fields = [("instruction", pa.string()), ("input", pa.string()), ("output", pa.string())]
    else:
        fields = [("messages" if fmt == "messages" else "conversations", pa.list_(TURN[fmt]))]
    if reasoning == "field":
        fields.append(("reasoning", pa.string()))
    return pa.schema(fields + METADATA)


def convert(row: dict[str, Any], kind: str, fmt: Format, reasoning: ReasoningMode) -> dict[str, Any]:
    """One record (schema columns) -> one training example in ``fmt``."""
    answer = think_inline(row["reasoning"], row["response"]) if reasoning == "inline" else row["response"]
    if fmt == "messages":
        out: dict[str, Any] = {"messages": [{"role": "user", "content": row["prompt"]},
                                            {"role": "assistant", "content": answer}]}
    elif fmt == "sharegpt":
        out = {"conversations": [{"from": "human", "value": row["prompt"]}, {"from": "gpt", "value": answer}]}
    else:
        out = {"instruction": row["prompt"], "input": "", "output": answer}
    if reasoning == "field":
        out["reasoning"] = row["reasoning"]
    out.update({"id": row["id"], "lang": row["lang"], "kind": kind, "categories": list(row["categories"] or []),
                "source": row["source"], "source_license": row["source_license"]})
    return out


def to_table(rows: list[dict[str, Any]], kinds: list[str], fmt: Format, reasoning: ReasoningMode) -> pa.Table:
    return pa.Table.from_pylist([convert(r, k, fmt, reasoning) for r, k in zip(rows, kinds)],
                                schema=schema(fmt, reasoning))
