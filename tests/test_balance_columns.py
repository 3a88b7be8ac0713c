"""The column expressions balance uses say the same as the per-row rules in curate.kinds (one rule, two forms),
on facts migrated from old meta (records.facts_from_meta)."""
from __future__ import annotations

import json
from itertools import product

import polars as pl

from curate import records
from curate.kinds import dimension_expr, kind_expr, record_kind, row_dimension, row_template, template_expr


def varied_rows():
    metas = [{}, {"collect": {"role": "general"}}, {"collect": {"role": "safety", "template": "t1"}},
             {"collect": {"template": ""}, "synthesize": {"template": "en/refusal.v1", "judge_score": 7}},
             {"synthesize": {"judge": {"safety": 8, "helpfulness": 5, "note": "x"}}}, {"synthesize": {"judge": {}}}]
    rows = []
    for i, (harmful, kind, cats, meta) in enumerate(product([True, False, None], ["safe_completion", "refusal", None],
                                                            [[], ["S03", "S01"]], metas)):
        rows.append({"id": str(i), "source": "s", "source_id": str(i), "lang": "en", "prompt": "p",
                     "prompt_harmful": harmful, "response_kind": kind, "categories": cats, "meta": json.dumps(meta)})
    return records.conform(pl.DataFrame(rows, infer_schema_length=None))


def test_expressions_agree_with_the_row_rules():
    df = varied_rows()
    cols = df.with_columns(kind_expr().alias("k")).with_columns(dimension_expr(pl.col("k")).alias("d"),
                                                                template_expr().alias("t"))
    scores = df["answer_judge_score"].to_list()
    for row, k, d, t in zip(df.iter_rows(named=True), cols["k"], cols["d"], cols["t"]):
        assert k == record_kind(row)
        assert d == row_dimension(row, k)
        assert t == row_template(row)
    assert {None, "general", "refusal", "safe_completion", "helpful"} == set(cols["k"])
    assert {None, "t1", "en/refusal.v1"} == set(cols["t"])
    assert {6.5, 7.0, None} == set(scores)
    by_meta = {row["meta"]: row["answer_judge_score"] for row in df.iter_rows(named=True)}
    assert by_meta[json.dumps({"synthesize": {"judge": {"safety": 8, "helpfulness": 5, "note": "x"}}})] == 6.5
    assert by_meta[json.dumps({"synthesize": {"judge": {}}})] is None
