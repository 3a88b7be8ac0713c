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
