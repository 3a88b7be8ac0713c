"""A stage changes only the record columns it declares in ``Stage.writes``; the runner checks it."""
from __future__ import annotations

import polars as pl
import pytest

from curate import records
from curate.contract import StageFailed, run_stage
from curate.stage import Stage, StageContext, StageOptions, available_stages


def _frame() -> pl.DataFrame:
    df = pl.DataFrame({"source": ["s", "s"], "source_id": ["1", "2"], "lang": ["en", "en"], "prompt": ["a", "b"]})
    return records.conform(df.with_columns(pl.Series("id", [records.make_id("s", i) for i in ("1", "2")])))


def _stage(change, writes=()) -> Stage:
    return Stage(name="toy", Options=StageOptions, run=lambda df, opts, ctx: change(df), help="", writes=writes)


def _run(stage: Stage, tmp_path) -> pl.DataFrame:
    return run_stage(stage, _frame(), StageOptions(), StageContext(stage="toy", work_dir=tmp_path, log=lambda m: None))


def test_undeclared_write_fails_the_stage(tmp_path):
    sets_split = lambda df: df.with_columns(pl.lit("train").alias("split"))  # noqa: E731
    with pytest.raises(StageFailed, match=r"stage toy changed split, which it does not declare"):
        _run(_stage(sets_split), tmp_path)
    assert _run(_stage(sets_split, writes=("split",)), tmp_path)["split"].to_list() == ["train", "train"]


def test_reordered_rows_are_not_writes_and_meta_lineage_is_declared(tmp_path):
    def shuffle_and_note(df):
        return records.with_stage_meta(df.reverse(), "toy", [{"seen": True}] * df.height)

    with pytest.raises(StageFailed, match=r"stage toy changed meta"):
        _run(_stage(shuffle_and_note), tmp_path)
    out = _run(_stage(shuffle_and_note, writes=("meta",)), tmp_path)
    assert out.height == 2 and all("toy" in records.load_meta(m) for m in out["meta"])


def test_every_stage_that_reads_records_declares_its_writes():
    stages = available_stages()
    assert all(stage.writes for name, stage in stages.items() if name not in ("collect", "export"))
    assert all(set(stage.writes) <= set(records.SCHEMA) for stage in stages.values())
    assert all(stage.reads and set(stage.reads) <= set(records.SCHEMA) for name, stage in stages.items()
               if name != "collect")


def test_a_declared_column_the_record_does_not_have_fails_the_stage(tmp_path):
    stage = Stage(name="toy", Options=StageOptions, run=lambda df, opts, ctx: df, help="", reads=("collect.role",))
    with pytest.raises(StageFailed, match=r"stage toy declares reads 'collect.role', which is not a record column"):
        _run(stage, tmp_path)


def test_every_fact_has_a_writer_that_declares_it_and_a_reader():
    stages = available_stages()
    for column, (writers, meaning) in records.FACTS.items():
        assert meaning and all(column in stages[w].writes for w in writers), column
        assert any(column in s.reads for s in stages.values()), f"{column}: no stage reads it"


def test_a_pipeline_reading_a_fact_a_later_stage_writes_is_refused(tmp_path):
    from curate.config import ConfigError
    from curate.pipeline import run_pipeline

    data = tmp_path / "in.jsonl"
    data.write_text('{"id": "1", "prompt": "hello"}\n', encoding="utf-8")
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"name: order\nstages:\n  - collect: {{sources: [{{name: s, path: {data}, license: MIT}}]}}\n"
                    "  - balance: {}\n  - synthesize: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="stage balance reads 'answer_template', which synthesize writes, but "
                                          "synthesize runs after balance"):
        run_pipeline(pipe, run_dir=tmp_path / "run", log=lambda m: None)
    assert not (tmp_path / "run" / "01-collect").exists()  # refused before any stage ran
