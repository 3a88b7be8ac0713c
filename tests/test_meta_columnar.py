"""records.with_stage_meta_json (columnar, text splicing) gives the same meta as with_stage_meta (per-row)."""
from __future__ import annotations

import json

import polars as pl

from curate import records


def test_columnar_meta_merge_equals_the_per_row_merge():
    metas = ["{}", None, '{"collect": {"role": "safety"}}', '{"classify": {"old": 1, "keep": true}}',
             '{"classify":{"old":2}}', "[1, 2]", "not json", '{"a": "text with \\"classify\\": inside"}', " { } "]
    entries = [{"harm_score": 0.5, "predicted": ["S01"]}, None] * (len(metas) // 2) + [{"x": [1]}]
    df = pl.DataFrame({"meta": metas}, schema={"meta": pl.Utf8})
    texts = pl.Series([json.dumps(e) if e is not None else None for e in entries], dtype=pl.Utf8)
    fast = records.with_stage_meta_json(df, "classify", texts)["meta"].to_list()
    slow = records.with_stage_meta(df, "classify", entries)["meta"].to_list()
    assert [records.load_meta(m) for m in fast] == [records.load_meta(m) for m in slow]
    assert records.load_meta(fast[4])["classify"] == {"old": 2, "harm_score": 0.5, "predicted": ["S01"]}
    assert records.load_meta(fast[2]) == {"collect": {"role": "safety"},
                                          "classify": {"harm_score": 0.5, "predicted": ["S01"]}}
    assert fast[3] == metas[3] and fast[5] == metas[5]  # no entry: the meta text is left as it was
