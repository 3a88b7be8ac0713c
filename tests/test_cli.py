"""The CLI parses: `curate collect` on one source from flags (derived from SourceSpec and its FieldMap), a bad
value is one line naming the key, and boolean stage flags reach the Options model."""
from __future__ import annotations

import json

import polars as pl
from click.testing import CliRunner

from curate.cli import main


def test_generic_source_from_flags(tmp_path):
    src = tmp_path / "raw.jsonl"
    rows = [{"q": "how do I bake bread", "a": "Mix flour and water.", "key": "r1", "tag": "safe"},
            {"q": "怎么烤面包", "a": "把面粉和水混合。", "key": "r2", "tag": "safe"},
            {"q": "what is 2 + 2", "a": "4", "key": "r3", "tag": "math"}]
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["collect", "--in", str(src), "--out", str(out), "--name", "mine",
                                       "--license", "MIT", "--prompt-field", "q", "--response-field", "a",
                                       "--id-field", "key", "--label-field", "tag", "--no-harmful",
                                       "--role", "general", "--languages", "en", "--limit", "3"])
    assert result.exit_code == 0, result.output
    df = pl.read_ndjson(out)
    assert df["source"].unique().to_list() == ["mine"] and df["source_license"].unique().to_list() == ["MIT"]
    kept = df.filter(pl.col("drop_reason").is_null())
    assert sorted(kept["source_id"].to_list()) == ["r1", "r3"]  # the zh row is dropped by --languages, counted
    assert df.height == 3 and kept["prompt_harmful"].to_list() == [False, False]
    assert kept.sort("source_id")["response"].to_list() == ["Mix flour and water.", "4"]
    assert sorted(kept["source_labels"].explode().to_list()) == ["math", "safe"]


def test_bad_source_flag_is_one_line_naming_the_key(tmp_path):
    src = tmp_path / "raw.jsonl"
    src.write_text('{"prompt": "hi"}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["collect", "--in", str(src), "--out", str(tmp_path / "o.jsonl"),
                                       "--name", "mine"])  # no --license without a preset
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "sources.0: 'license' is required" in result.output


def test_a_stage_bool_flag_parses(tmp_path):
    """Boolean stage options (--x/--no-x) reach the Options model as booleans (they crashed as YAML text)."""
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": f"i{i}", "source": "s", "source_id": str(i), "lang": "en",
                                       "prompt": p}) + "\n" for i, p in enumerate(["one two three four five six",
                                                                                  "one two three four five six",
                                                                                  "something else entirely"])))
    for flag, duplicates in (("--weighted-words", 1), ("--no-weighted-words", 1)):
        result = CliRunner().invoke(main, ["dedup", "--in", str(src), "--out", str(out), flag])
        assert result.exit_code == 0, result.output
        assert pl.read_ndjson(out)["is_duplicate"].sum() == duplicates
