import json

import polars as pl
import pytest

from curate import records


def frame(**cols):
    base = {"id": ["a", "b"], "source": ["s", "s"], "source_id": ["1", "2"], "lang": ["en", "zh"],
            "prompt": ["hello", "你好"]}
    base.update(cols)
    return records.conform(pl.DataFrame(base))


def test_conform_fills_every_schema_column():
    df = frame()
    assert df.columns == records.COLUMNS
    assert df["categories"].to_list() == [[], []]
    assert df["is_duplicate"].to_list() == [False, False]
    records.validate(df)


def test_validation_names_column_and_row():
    df = frame(prompt=["hello", ""])
    with pytest.raises(records.SchemaError, match=r"'prompt' is empty in row 1 \(id='b'\)"):
        records.validate(df)


def test_validation_rejects_unknown_enum_value_and_duplicate_ids():
    with pytest.raises(records.SchemaError, match=r"'response_kind' has value 'maybe' in row 0"):
        records.validate(frame(response_kind=["maybe", None]))
    with pytest.raises(records.SchemaError, match=r"id 'a' appears 2 times"):
        records.validate(frame(id=["a", "a"]))


def test_validation_rejects_wrong_type_and_extra_column():
    df = frame().with_columns(pl.col("is_duplicate").cast(pl.Utf8))
    with pytest.raises(records.SchemaError, match="'is_duplicate' has type"):
        records.validate(df)
    with pytest.raises(records.SchemaError, match="'colour' is not in the record schema"):
        records.conform(pl.DataFrame({"id": ["a"], "colour": ["red"]}))


def test_mark_dropped_keeps_the_first_reason():
    df = frame()
    df = records.mark_dropped(df, pl.col("lang") == "zh", "first")
    df = records.mark_dropped(df, pl.lit(True), "second")
    assert df["drop_reason"].to_list() == ["second", "first"]


def test_ids_are_stable_and_distinct():
    assert records.make_id("xstest", "1") == records.make_id("xstest", "1")
    assert records.make_id("xstest", "1") != records.make_id("xstest", "2")
    assert records.make_id("a", "b\x1fc") != records.make_id("a\x1fb", "c")


def test_stage_meta_is_namespaced():
    df = records.with_stage_meta(frame(), "dedup", [{"cluster": "x"}, None])
    assert records.load_meta(df["meta"][0]) == {"dedup": {"cluster": "x"}}
    assert records.load_meta(df["meta"][1]) == {}


def test_an_old_frame_gets_its_facts_from_meta_once():
    """Parquet written before the facts were columns: conform derives them from the old meta (migrate on read)."""
    meta = {"collect": {"role": "general", "template": "roleplay"},
            "synthesize": {"status": "synthesized", "model": "writer-1", "template": "en/refusal.v1",
                           "judge": {"policy_adherence": 8, "safety": 9, "helpfulness": 6, "reasoning_quality": 7}},
            "classify": {"predicted": ["S07"], "disagree_categories": {"source": ["S03", "S07"], "classifier": ["S07"]},
                         "disagree_harmful": {"source": True, "classifier": False}},
            "review": {"task_id": 3}}
    old = pl.DataFrame({"id": ["a", "b", "c"], "source": "s", "source_id": ["1", "2", "3"], "lang": "en",
                        "prompt": "p", "response": ["r", "from the source", None],
                        "meta": [json.dumps(meta), json.dumps({"classify": {"predicted": ["S00"]}}), "{}"]})
    facts = records.validate(records.conform(old)).select(list(records.FACTS)).to_dicts()
    assert facts[0] == {"role": "general", "prompt_template": "roleplay", "answer_origin": "synthesized",
                        "answer_model": "writer-1", "answer_template": "en/refusal.v1", "answer_judge_score": 7.5,
                        "synthesis_status": "synthesized", "category_disagreement": 0.5,
                        "harmful_disagreement": True, "reviewed": True}
    assert facts[1] == {"role": "safety", "prompt_template": None, "answer_origin": "source", "answer_model": None,
                        "answer_template": None, "answer_judge_score": None, "synthesis_status": None,
                        "category_disagreement": 0.0, "harmful_disagreement": False, "reviewed": False}
    assert facts[2]["answer_origin"] is None and facts[2]["category_disagreement"] is None
    # a frame that has the columns keeps them: meta is not read again
    new = records.conform(old.with_columns(pl.lit("safety").alias("role")))
    assert new["role"].to_list() == ["safety"] * 3


def test_fact_values_are_checked():
    df = records.conform(pl.DataFrame({"id": ["a"], "source": "s", "source_id": "1", "lang": "en", "prompt": "p",
                                       "role": ["capability"]}))
    with pytest.raises(records.SchemaError, match=r"'role' has value 'capability'.*allowed: \['general', 'safety'\]"):
        records.validate(df)


def test_an_old_run_folder_is_migrated_when_the_runner_reads_it(tmp_path):
    from curate.store import RunStore

    store = RunStore(tmp_path / "run")
    folder = store.stage_dir(1, "collect")
    folder.mkdir(parents=True)
    old = frame(meta=[json.dumps({"collect": {"role": "general"}}), "{}"]).drop(*records.FACTS)
    old.write_parquet(folder / "part-00000.parquet")  # as curate wrote it before the facts were columns
    df = store.read_stage(1, "collect")
    assert records.validate(df).columns == records.COLUMNS and df["role"].to_list() == ["general", "safety"]


def test_malformed_old_meta_migrates_without_a_crash():
    metas = ["not json", '{"classify": {"disagree_categories": "x"}}',
             '{"classify": {"disagree_categories": {"source": 3}}}', "[1, 2]", '{"synthesize": {"judge_score": "high", "judge": {"a": "b"}}}', "", None]
    old = pl.DataFrame({"id": [str(i) for i in range(len(metas))], "source": "s",
                        "source_id": [str(i) for i in range(len(metas))], "lang": "en", "prompt": "p", "meta": metas})
    df = records.validate(records.conform(old))
    assert df["category_disagreement"].to_list() == [None, 0.0, 0.0, None, None, None, None]
    assert df["answer_judge_score"].null_count() == len(metas) and df["role"].to_list() == ["safety"] * len(metas)


def test_record_ids_hash_the_json_of_source_and_source_id_whatever_the_characters():
    """make_id skips json.dumps when nothing needs escaping: the ids stay those of json.dumps (stable across
    versions), with quotes, backslashes, control characters and non-ASCII in either part."""
    import json

    import xxhash

    parts = ["mined", "1", "", 'say "hi"', "back\\slash", "tab\there", "new\nline", "\x7f", "\u2028", "中文", "🙂",
             "\x00", "a/b", "'single'"]
    for source in parts[:6]:
        for source_id in parts:
            want = xxhash.xxh3_128_hexdigest(json.dumps([source, source_id], ensure_ascii=False).encode())[:24]
            assert records.make_id(source, source_id) == want, (source, source_id)
