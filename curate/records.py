"""The record schema: one row per candidate training example, in one place.

Every stage reads and writes frames with exactly these columns. Stages never delete rows:
a stage that rejects a record sets ``drop_reason`` (first reason wins) and keeps the row,
so every input record is accounted for at the end of a run (the funnel).

``category_scores`` and ``meta`` are JSON strings: they stay schema-stable whatever taxonomy
or stage wrote them. ``meta`` is write-only lineage, namespaced by stage (``{"collect": {...}, "dedup": {...}}``):
no stage reads another stage's ``meta``. A fact one stage writes for later ones is a typed column (``FACTS``).
Frames written before a fact column existed are migrated on read, once, here (``facts_from_meta``).
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable

import numpy as np
import polars as pl
import xxhash

from curate.errors import RunFailed
from curate.taxonomy import SAFE

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
    "role": pl.Utf8,
    "prompt_template": pl.Utf8,
    "answer_origin": pl.Utf8,
    "answer_model": pl.Utf8,
    "answer_template": pl.Utf8,
    "answer_judge_score": pl.Float64,
    "synthesis_status": pl.Utf8,
    "category_disagreement": pl.Float64,
    "harmful_disagreement": pl.Boolean,
    "reviewed": pl.Boolean,
    "meta": pl.Utf8,
}
COLUMNS = list(SCHEMA)
HAS_RESPONSE = pl.col("response").is_not_null() & (pl.col("response").str.strip_chars() != "")
# What a frame of every row keeps of the answers when it need not hold them (a million answers with their reasoning
# are gigabytes): whether each row has one. Read with ``ANSWERED_FACT``, asked with ``has_answer``.
ANSWERED = "answered"
ANSWERED_FACT = HAS_RESPONSE.alias(ANSWERED)


def has_answer(df: pl.DataFrame | pl.LazyFrame) -> pl.Expr:
    """``HAS_RESPONSE``, or the frame's ``answered`` column where it kept only that of the answers."""
    names = df.collect_schema().names() if isinstance(df, pl.LazyFrame) else df.columns
    return pl.col(ANSWERED) if ANSWERED in names else HAS_RESPONSE

# The facts stages write for later ones: column -> (the stages that write it, what it says).
FACTS: dict[str, tuple[tuple[str, ...], str]] = {
    "role": (("collect",), "safety, or general: capability data mixed as is"),
    "prompt_template": (("collect",), "the prompt template or attack wrapper the input names (balance diversity)"),
    "answer_origin": (("collect", "synthesize"), "source: the answer came with the source; synthesized: "
                                                 "synthesize wrote it; null: no answer yet"),
    "answer_model": (("synthesize",), "the model that wrote the synthesized answer"),
    "answer_template": (("synthesize",), "the prompt template id the answer is (to be) written with"),
    "answer_judge_score": (("synthesize",), "the answer judge's mean rubric score (1-10) of the kept answer"),
    "synthesis_status": (("synthesize",), "what synthesize did with the row: passthrough, source_kept, "
                                           "source_kept_unsafe, unlabelled, pending, synthesized, failed, rejected"),
    "category_disagreement": (("classify",), "Jaccard distance of the source's dimensions and the classifier's "
                                              "(0 = agree or no source dimensions; null = not classified)"),
    "harmful_disagreement": (("classify",), "the source's harmful flag and the classifier's differ "
                                             "(null = not classified)"),
    "reviewed": (("review",), "a reviewer's decision was merged into the row"),
}
SYNTHESIS_STATUSES = frozenset({"passthrough", "source_kept", "source_kept_unsafe", "unlabelled", "pending",
                                "synthesized", "failed", "rejected"})

# Drop reasons balance sets (export's card and plots tell them apart from the other stages' drops).
NOT_SELECTED = "not_selected"
INELIGIBLE = {
    "unlabelled": "unlabelled (prompt_harmful unknown)",
    "harmful_response": "harmful response",
    "pending_synthesis": "pending synthesis (no response)",
}

NON_NULL = ("id", "source", "source_id", "lang", "prompt")
ALLOWED_VALUES: dict[str, frozenset[str]] = {
    "label_origin": frozenset({"source", "classifier", "judge", "human"}),
    "response_kind": frozenset({"refusal", "safe_completion", "helpful", "harmful"}),
    "split": frozenset({"train", "test"}),
    "role": frozenset({"safety", "general"}),
    "answer_origin": frozenset({"source", "synthesized"}),
    "synthesis_status": SYNTHESIS_STATUSES,
}


class SchemaError(RunFailed, ValueError):
    """A frame does not follow the record schema; the message names the column and the row."""


_JSON_ESCAPED = re.compile(r'[\x00-\x1f"\\]')  # what json.dumps(..., ensure_ascii=False) escapes in a string


def make_id(source: str, source_id: str) -> str:
    """Stable record id: the same (source, source_id) gives the same id in every run. The hashed text is
    ``json.dumps([source, source_id], ensure_ascii=False)``; written directly when nothing needs escaping
    (8x faster, a million ids a run)."""
    if _JSON_ESCAPED.search(source) or _JSON_ESCAPED.search(source_id):
        text = json.dumps([source, source_id], ensure_ascii=False)
    else:
        text = f'["{source}", "{source_id}"]'
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))[:24]


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def conform(df: pl.DataFrame, columns: list[str] | None = None) -> pl.DataFrame:
    """Add missing schema columns as nulls, cast to the schema types, order columns (only ``columns`` of the
    schema, for a frame the runner gave some columns: ``curate.streaming``).

    Extra columns are an error: a stage that needs more keeps it in ``meta``. Fact columns a frame lacks (written
    before they existed) are derived from its ``meta`` (``facts_from_meta``).
    """
    names = list(SCHEMA) if columns is None else [c for c in SCHEMA if c in columns]
    extra = [c for c in df.columns if c not in SCHEMA]
    if extra:
        raise SchemaError(f"column {extra[0]!r} is not in the record schema (keep stage data in 'meta')")
    if columns is None:
        df = facts_from_meta(df)
    exprs = []
    for name in names:
        dtype = SCHEMA[name]
        if name in df.columns:
            exprs.append(pl.col(name).cast(dtype, strict=False) if df.schema[name] != dtype else pl.col(name))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    out = df.select(exprs)
    defaults = {"source_labels": pl.lit([], dtype=pl.List(pl.Utf8)), "categories": pl.lit([], dtype=pl.List(pl.Utf8)),
                "is_duplicate": False, "role": "safety", "reviewed": False, "meta": "{}"}
    return out.with_columns(pl.col(name).fill_null(value) for name, value in defaults.items() if name in names)


def facts_from_meta(df: pl.DataFrame) -> pl.DataFrame:
    """The fact columns a frame lacks, derived once from the lineage in its ``meta``: the one place that reads
    other stages' keys, for run folders and files written before the facts became columns."""
    missing = [c for c in FACTS if c not in df.columns]
    if not missing:
        return df
    answered = HAS_RESPONSE if "response" in df.columns else pl.lit(False)
    if "meta" not in df.columns:
        return df.with_columns(pl.when(answered).then(pl.lit("source")).alias("answer_origin")) \
            if "answer_origin" in missing else df
    meta = pl.col("meta").cast(pl.Utf8)
    status, model = meta.str.json_path_match("$.synthesize.status"), meta.str.json_path_match("$.synthesize.model")
    template = meta.str.json_path_match("$.collect.template")
    classified = meta.str.json_path_match("$.classify").is_not_null()
    harm_src = meta.str.json_path_match("$.classify.disagree_harmful.source")
    harm_clf = meta.str.json_path_match("$.classify.disagree_harmful.classifier")
    cats_src = _json_strings(meta.str.json_path_match("$.classify.disagree_categories.source"))
    cats_clf = _json_strings(meta.str.json_path_match("$.classify.disagree_categories.classifier"))
    synthesized = (status == "synthesized") | (status.is_null() & (model.fill_null("") != ""))
    derived = {
        "role": pl.when(meta.str.json_path_match("$.collect.role") == "general").then(pl.lit("general"))
                  .otherwise(pl.lit("safety")),
        "prompt_template": pl.when(template != "").then(template),
        "answer_origin": pl.when(synthesized).then(pl.lit("synthesized")).when(answered).then(pl.lit("source")),
        "answer_model": model,
        "answer_template": meta.str.json_path_match("$.synthesize.template"),
        "synthesis_status": status,
        "category_disagreement": pl.when(cats_src.is_not_null() | cats_clf.is_not_null()).then(
            jaccard_distance(cats_src.fill_null([]), cats_clf.fill_null([]))).when(classified).then(pl.lit(0.0)),
        "harmful_disagreement": pl.when(harm_src.is_in(["true", "false"]) & harm_clf.is_in(["true", "false"]))
            .then(harm_src != harm_clf).when(classified).then(pl.lit(False)),
        "reviewed": meta.str.json_path_match("$.review").fill_null("{}") != "{}",
    }
    out = df.with_columns(expr.alias(name) for name, expr in derived.items() if name in missing)
    return out.with_columns(_judge_scores(df["meta"])) if "answer_judge_score" in missing else out


def _json_strings(text: pl.Expr) -> pl.Expr:
    """The string items of a JSON array given as text (ids: no quotes inside); null when it is not an array."""
    return pl.when(text.str.starts_with("[")).then(
        text.str.extract_all(r'"[^"\\]*"').list.eval(pl.element().str.strip_chars('"')))


def jaccard_distance(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """1 - |a & b| / |a | b| of two dimension lists, the safe id aside; 0 when both are empty."""
    safe = pl.lit([SAFE], dtype=pl.List(pl.Utf8))
    a, b = a.list.set_difference(safe), b.list.set_difference(safe)
    union = a.list.set_union(b).list.len()
    return pl.when(union > 0).then((1 - a.list.set_intersection(b).list.len() / union).round(6)).otherwise(0.0)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _judge_scores(metas: pl.Series) -> pl.Series:
    """``meta.synthesize.judge_score``, else the mean of the judge's rubric in ``meta.synthesize.judge``."""
    has = metas.cast(pl.Utf8).str.contains('"synthesize"', literal=True).fill_null(False).to_numpy()
    scores: list[float | None] = [None] * len(metas)
    for i in np.flatnonzero(has).tolist():
        synth = load_meta(metas[i]).get("synthesize") or {}
        judge = synth.get("judge")
        if _number(synth.get("judge_score")):
            scores[i] = float(synth["judge_score"])
        elif isinstance(judge, dict) and any(_number(v) for v in judge.values()):
            values = [float(v) for v in judge.values() if _number(v)]
            scores[i] = sum(values) / len(values)
    return pl.Series("answer_judge_score", scores, dtype=pl.Float64)


def validate(df: pl.DataFrame, where: str = "records", *, columns: list[str] | None = None) -> pl.DataFrame:
    """Check a frame against the schema (only ``columns`` of it, for a frame of some columns); raise SchemaError
    naming the offending column and row."""
    expected = {name: SCHEMA[name] for name in columns} if columns is not None else SCHEMA
    for name, dtype in expected.items():
        if name not in df.columns:
            raise SchemaError(f"{where}: missing column {name!r}")
        if df.schema[name] != dtype:
            raise SchemaError(f"{where}: column {name!r} has type {df.schema[name]}, expected {dtype}")
    extra = [c for c in df.columns if c not in expected]
    if extra:
        raise SchemaError(f"{where}: unexpected column {extra[0]!r}")
    for name in (n for n in NON_NULL if n in expected):
        bad = df.with_row_index("_row").filter(pl.col(name).is_null() | (pl.col(name) == ""))
        if bad.height:
            row = bad.row(0, named=True)
            raise SchemaError(f"{where}: column {name!r} is empty in row {row['_row']} (id={row['id']!r})")
    for name, allowed in ((n, a) for n, a in ALLOWED_VALUES.items() if n in expected):
        bad = df.with_row_index("_row").filter(pl.col(name).is_not_null() & ~pl.col(name).is_in(list(allowed)))
        if bad.height:
            row = bad.row(0, named=True)
            raise SchemaError(
                f"{where}: column {name!r} has value {row[name]!r} in row {row['_row']} (id={row['id']!r}); "
                f"allowed: {sorted(allowed)}"
            )
    raise_repeated_id(df["id"], where)
    return df


def raise_repeated_id(ids: pl.Series, where: str, hashes: np.ndarray | None = None) -> None:
    """Raise SchemaError naming an id that appears more than once. Compared by 64-bit hash first (8 bytes a row;
    a hash table of 1M string ids kept 350 MB), strings only among ids whose hashes clash. ``hashes``: the ids'
    ``id_hashes``, when the caller has them."""
    hashes = id_hashes(ids) if hashes is None else hashes
    ordered = np.sort(hashes)
    clashing = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(clashing):
        return
    suspects = ids.filter(pl.Series(np.isin(hashes, clashing))).to_frame("id")
    dup = suspects.group_by("id", maintain_order=True).len().filter(pl.col("len") > 1)
    if dup.height:
        raise SchemaError(f"{where}: id {dup['id'][0]!r} appears {dup['len'][0]} times (ids must be unique)")


def id_hashes(ids: pl.Series) -> np.ndarray:
    return ids.hash(seed=0).to_numpy()


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


_META_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str)  # json.dumps builds one per call


def dump_meta(meta: dict[str, Any]) -> str:
    return _META_JSON.encode(meta)


def concat_text(*parts: str | pl.Expr) -> pl.Expr:
    """Text pieces (literal strings or string expressions) joined; a null piece makes the result null."""
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p.cast(pl.Utf8) for p in parts])


def with_stage_meta_json(df: pl.DataFrame, stage: str, values: pl.Series) -> pl.DataFrame:
    """Columnar ``with_stage_meta``: ``values`` holds each row's entry as JSON object text (null: unchanged).

    A row whose meta is a JSON object without a ``stage`` key gets the entry spliced into its text (no per-row
    parse: a million rows take a second, not a minute); the rest (the key already there, or meta that is not an
    object) are merged by ``with_stage_meta``. Only the rows with an entry are touched (the rest are not rebuilt:
    on 10M rows that was 2.8 GB)."""
    at = np.flatnonzero(values.is_not_null().to_numpy())
    if len(at) == 0:
        return df
    rows = pl.DataFrame({"meta": df["meta"].gather(at), "_entry": values.gather(at)})
    meta = pl.col("meta").fill_null("{}").str.strip_chars()
    key = json.dumps(stage, ensure_ascii=False)
    obj = meta.str.starts_with("{") & meta.str.ends_with("}")
    spliceable = obj & ~meta.str.contains(f"{re.escape(key)}\\s*:")
    empty = meta.str.strip_chars("{} \n\t") == ""
    value = pl.col("_entry")
    spliced = (pl.when(empty).then(concat_text("{", key, ": ", value, "}"))
                 .otherwise(concat_text(meta.str.slice(0, meta.str.len_chars() - 1), ", ", key, ": ", value, "}")))
    rows = rows.with_columns(pl.when(spliceable).then(spliced).otherwise(pl.col("meta")).alias("meta"),
                             (~spliceable).alias("_slow"))
    slow = np.flatnonzero(rows["_slow"].to_numpy())
    if len(slow):
        part = with_stage_meta(rows[slow], stage, [json.loads(v) for v in rows["_entry"].gather(slow).to_list()])
        rows = rows.with_columns(rows["meta"].scatter(slow, part["meta"]))
    return df.with_columns(df["meta"].scatter(at, rows["meta"]))


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
