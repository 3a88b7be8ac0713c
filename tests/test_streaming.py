"""The runner never holds a run's whole table: stages get shards, batches or only the columns they declare
(curate.streaming), and the result is the same as in one piece."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from curate import records
from curate.contract import run_stage
from curate.pipeline import StageFailed, run_pipeline
from curate.stage import Stage, StageContext, StageOptions
from curate.store import RunStore, read_shards, shard_paths, shard_writer
from curate.streaming import declared_columns, run_streamed

QUICKSTART = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "quickstart"


def _records(n: int, start: int = 0) -> pl.DataFrame:
    ids = [str(i) for i in range(start, start + n)]
    return records.conform(pl.DataFrame({
        "id": [records.make_id("s", i) for i in ids], "source": ["s"] * n, "source_id": ids, "lang": ["en"] * n,
        "prompt": [f"prompt number {i}" for i in ids]}))


def test_shards_and_fingerprint_do_not_depend_on_how_the_rows_arrive(tmp_path):
    whole = _records(25)
    with shard_writer(tmp_path / "a", shard_rows=10) as a:
        a.add(whole)
    with shard_writer(tmp_path / "b", shard_rows=10) as b:
        for start, size in ((0, 3), (3, 0), (3, 9), (12, 13)):  # uneven pieces, one empty, chunked frames
            b.add(pl.concat([whole.slice(start, 1), whole.slice(start + 1, max(size - 1, 0))]) if size else
                  whole.clear())
    assert a.fingerprint == b.fingerprint
    assert [pl.read_parquet(p).height for p in shard_paths(tmp_path / "b")] == [10, 10, 5]
    assert read_shards(tmp_path / "b").equals(whole)
    with shard_writer(tmp_path / "empty", shard_rows=10) as empty:
        empty.add(whole.clear())
    assert read_shards(tmp_path / "empty").schema == whole.schema  # one empty shard keeps the schema


def _ctx(tmp_path) -> StageContext:
    return StageContext(stage="toy", work_dir=tmp_path, log=lambda m: None)


def _input(tmp_path, rows=12, shard_rows=5) -> Path:
    folder = tmp_path / "01-in"
    with shard_writer(folder, shard_rows=shard_rows) as writer:
        writer.add(_records(rows))
    return folder


def test_a_stage_that_sees_all_rows_gets_only_the_columns_it_declares(tmp_path):
    seen = []

    def note(df, opts, ctx):
        seen.append(df.columns)
        return df.with_columns(pl.lit("train").alias("split"))

    stage = Stage(name="toy", Options=StageOptions, run=note, help="", reads=("prompt",), writes=("split",))
    with shard_writer(tmp_path / "02-out") as writer:
        counts = run_streamed(stage, StageOptions(), _ctx(tmp_path), _input(tmp_path), writer)
    assert seen == [["id", "prompt", "split"]] == [declared_columns(stage)]  # no meta: it appends no lineage
    out = read_shards(tmp_path / "02-out")
    assert out.columns == records.COLUMNS and out["split"].to_list() == ["train"] * 12
    assert out.drop("split").equals(read_shards(tmp_path / "01-in").drop("split"))  # the rest put back as it was
    assert (counts.rows_in, counts.rows_out) == (12, 12)


def test_meta_entries_are_spliced_by_the_runner_as_the_stage_would_merge_them_itself(tmp_path):
    """A stage that only adds its own meta entry (Stage.meta_entry_only) is not given meta; its entries land on
    the right rows although it returns them in another order, and merge with a key the row already has."""
    seen = []

    def tag(df, opts, ctx):
        seen.append(df.columns)
        df = df.reverse()  # rows come back in another order: the entries must follow them
        number = df["source_id"].cast(pl.Int64)
        first = pl.Series([f'{{"n": {n}}}' if n % 3 == 0 else None for n in number.to_list()], dtype=pl.Utf8)
        df = ctx.add_meta(df, "toy", first)
        second = pl.Series([f'{{"odd": {str(n % 2 == 1).lower()}}}' if n < 6 else None for n in number.to_list()],
                           dtype=pl.Utf8)
        return ctx.add_meta(df, "toy", second).with_columns(pl.lit("train").alias("split"))

    stage = Stage(name="toy", Options=StageOptions, run=tag, help="", reads=("source_id",),
                  writes=("split", "meta"), meta_entry_only=True)
    source = _input(tmp_path)
    with shard_writer(tmp_path / "02-out") as writer:
        run_streamed(stage, StageOptions(), _ctx(tmp_path), source, writer)
    assert seen == [["id", "source_id", "split"]]  # meta stayed on disk
    out = read_shards(tmp_path / "02-out")
    whole = run_stage(stage, read_shards(source), StageOptions(), _ctx(tmp_path / "whole"))  # meta in the frame
    assert out.equals(out.select("id").join(whole, on="id", how="left", maintain_order="left"))
    meta = {int(i): json.loads(m) for i, m in zip(out["source_id"], out["meta"])}
    assert meta[0] == {"toy": {"n": 0, "odd": False}} and meta[3] == {"toy": {"n": 3, "odd": True}}
    assert meta[4] == {"toy": {"odd": False}} and meta[9] == {"toy": {"n": 9}} and meta[7] == {}


def test_a_stage_that_does_not_declare_meta_cannot_add_to_it_through_the_runner(tmp_path):
    stage = Stage(name="toy", Options=StageOptions, help="", reads=("prompt",), writes=("split",), meta_entry_only=True,
                  run=lambda df, o, ctx: ctx.add_meta(df, "toy", pl.Series(['{"a": 1}'] * df.height)))
    with pytest.raises(pl.exceptions.ColumnNotFoundError, match="meta"):
        with shard_writer(tmp_path / "02-out") as writer:
            run_streamed(stage, StageOptions(), _ctx(tmp_path), _input(tmp_path), writer)


def test_reading_an_undeclared_column_fails_the_stage_by_name(tmp_path):
    stage = Stage(name="toy", Options=StageOptions, run=lambda df, o, c: df.with_columns(pl.col("lang")), help="",
                  reads=("prompt",), writes=("split",))
    with pytest.raises(pl.exceptions.ColumnNotFoundError, match="lang"):
        with shard_writer(tmp_path / "02-out") as writer:
            run_streamed(stage, StageOptions(), _ctx(tmp_path), _input(tmp_path), writer)
    assert not (tmp_path / "02-out").exists()  # a failed stage leaves no output folder


@pytest.mark.parametrize("change, message", [
    (lambda df: df.slice(1), "lost 1 rows"),
    (lambda df: df.with_columns(pl.col("prompt").str.to_uppercase()), "changed prompt"),
    (lambda df: df.reverse().with_columns(pl.lit("x").alias("prompt")), "changed prompt"),
])
def test_the_contract_holds_on_declared_columns(tmp_path, change, message):
    stage = Stage(name="toy", Options=StageOptions, run=lambda df, o, c: change(df), help="", reads=("prompt",),
                  writes=("split",))
    with pytest.raises(StageFailed, match=message):
        with shard_writer(tmp_path / "02-out") as writer:
            run_streamed(stage, StageOptions(), _ctx(tmp_path), _input(tmp_path), writer)


def test_a_reordering_stage_gets_its_rows_put_back_in_input_order(tmp_path):
    stage = Stage(name="toy", Options=StageOptions, help="", reads=("prompt",), writes=("split",),
                  run=lambda df, o, c: df.reverse().with_columns(pl.lit("test").alias("split")))
    with shard_writer(tmp_path / "02-out") as writer:
        run_streamed(stage, StageOptions(), _ctx(tmp_path), _input(tmp_path), writer)
    assert read_shards(tmp_path / "02-out")["id"].equals(read_shards(tmp_path / "01-in")["id"])


def test_a_shardable_stage_runs_once_per_shard_with_its_statistics_added_up(tmp_path):
    heights = []

    def count(df, opts, ctx):
        heights.append(df.height)
        ctx.stats["rows"] = df.height
        return df.with_columns(pl.lit("train").alias("split"))

    stage = Stage(name="toy", Options=StageOptions, run=count, help="", reads=("prompt",), writes=("split",),
                  shardable=lambda opts: True)
    ctx = _ctx(tmp_path)
    with shard_writer(tmp_path / "02-out") as writer:
        run_streamed(stage, StageOptions(), ctx, _input(tmp_path, rows=12, shard_rows=5), writer)
    assert heights == [5, 5, 2] and ctx.stats == {"rows": 12}


def test_rows_created_in_batches_with_a_repeated_id_fail(tmp_path):
    def batches(opts, ctx):
        yield _records(3)
        yield _records(2, start=2)  # id of row 2 again, in another batch

    stage = Stage(name="toy", Options=StageOptions, run=lambda df, o, c: df, help="", creates_rows=True,
                  batches=batches)
    with pytest.raises(records.SchemaError, match="appears 2 times"):
        with shard_writer(tmp_path / "01-out") as writer:
            run_streamed(stage, StageOptions(), _ctx(tmp_path), None, writer)


def _pipeline(tmp_path: Path, name: str) -> Path:
    sources = [{"preset": p, "path": str(QUICKSTART / p)} for p in ("xstest", "advbench", "flames")]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "run_dir": str(tmp_path / name), "report": False, "stages": [
        {"collect": {"sources": sources}}, {"dedup": {}}, {"classify": {"embed_band": 0}},
        {"balance": {"seed": 1, "pending": "keep"}}, {"export": {"content": "prompts"}}]}))
    return path


def test_a_run_in_small_shards_equals_a_run_in_one(tmp_path, monkeypatch):
    one = run_pipeline(_pipeline(tmp_path, "one"), log=lambda m: None)
    monkeypatch.setattr(RunStore, "shard_rows", 16)  # every stage's input in several shards
    many = run_pipeline(_pipeline(tmp_path, "many"), log=lambda m: None)
    assert len(shard_paths(tmp_path / "many" / "01-collect")) > 3
    for stage in RunStore.existing(tmp_path / "one").finished_stages():
        small = RunStore.existing(tmp_path / "many").manifest(stage.index, stage.name)
        assert read_shards(stage.path).equals(read_shards(tmp_path / "many" / stage.path.name)), stage.name
        assert small["rows_out"] == stage.manifest["rows_out"] and small["new_drops"] == stage.manifest["new_drops"]
        if stage.name == "classify":  # ran once per shard: its figures add up to the one-piece run's
            assert small["stats"] == stage.manifest["stats"]
    assert one.funnel == many.funnel and one.final.equals(many.final)


def test_a_sink_passes_its_shards_on_as_they_are(tmp_path):
    seen = []
    stage = Stage(name="toy", Options=StageOptions, help="", reads=("prompt",), sink=True,
                  run=lambda rows, o, c: seen.append(rows.select("prompt").collect().height) or rows)
    source = _input(tmp_path, rows=12, shard_rows=5)
    with shard_writer(tmp_path / "02-out", shard_rows=5) as writer:
        counts = run_streamed(stage, StageOptions(), _ctx(tmp_path), source, writer)
    assert seen == [12] and (counts.rows_in, counts.rows_out) == (12, 12)
    assert [p.read_bytes() for p in shard_paths(tmp_path / "02-out")] == [p.read_bytes() for p in shard_paths(source)]
    with shard_writer(tmp_path / "03-whole", shard_rows=5) as whole:
        whole.add(read_shards(source))
    assert writer.fingerprint == whole.fingerprint  # linked or written, the same output


def test_dedup_reads_its_texts_from_the_shards_and_finds_what_it_finds_in_one_frame(tmp_path):
    from dataclasses import replace

    from curate.dedup import STAGE as DEDUP

    seen = []

    def spy(df, opts, ctx):
        seen.append((df.columns, ctx.shards))
        return DEDUP.run(df, opts, ctx)

    base = [f"how do I make the thing number {i} work with the other part {i * 7}" for i in range(30)]
    prompts = base + [t + " please" for t in base[:10]] + [t.upper() for t in base[10:15]]
    df = _records(len(prompts)).with_columns(pl.Series("prompt", prompts))
    folder = tmp_path / "01-in"
    with shard_writer(folder, shard_rows=8) as writer:
        writer.add(df)
    evals = tmp_path / "evals.jsonl"  # one eval item is a clustered row: both kinds of meta entry on one row
    evals.write_text(json.dumps({"id": "e1", "prompt": base[3]}) + "\n", encoding="utf-8")
    opts = DEDUP.Options(threshold=0.7, prefer=["longest"], against=[str(evals)])
    with shard_writer(tmp_path / "02-out", shard_rows=8) as writer:
        run_streamed(replace(DEDUP, run=spy), opts, _ctx(tmp_path), folder, writer)
    assert "prompt" not in seen[0][0] and seen[0][1] == shard_paths(folder)  # the texts were left on disk
    assert "meta" not in seen[0][0]  # and every row's lineage: its entries were spliced in as the shards were written
    whole = run_stage(DEDUP, df, opts, _ctx(tmp_path / "whole"))
    streamed = read_shards(tmp_path / "02-out")
    assert streamed.equals(whole)
    row = streamed.filter(pl.col("prompt") == base[3])
    assert row["drop_reason"].to_list() == ["contaminated"] and json.loads(row["meta"][0])["dedup"] == {
        "cluster_size": 2, "contaminated_by": "evals.jsonl:e1", "eval_overlap": 1.0, "match": "near",
        "representative": False}
    assert streamed["is_duplicate"].sum() == 15 and streamed.filter(pl.col("is_duplicate"))["prompt"].str.ends_with(
        "please").sum() == 0  # the longer "... please" rows represent their clusters


def _count_heights(heights: list[int]) -> Stage:
    def count(df, opts, ctx):
        heights.append(df.height)
        return df.with_columns(pl.lit("train").alias("split"))

    return Stage(name="toy", Options=StageOptions, run=count, help="", reads=("prompt",), writes=("split",),
                 shardable=lambda opts: True)


@pytest.mark.parametrize("out_name", ["out.parquet", "out.jsonl", "out.csv", "out-folder"])
def test_a_stage_on_files_runs_shard_by_shard_and_writes_every_row(tmp_path, out_name):
    from curate.io import read_records
    from curate.pipeline import run_on_files

    first, second = tmp_path / "a.parquet", tmp_path / "b.jsonl"
    _records(13).write_parquet(first)
    _records(9, start=13).write_ndjson(second)
    heights: list[int] = []
    result = run_on_files(_count_heights(heights), [first, second], tmp_path / out_name, StageOptions(),
                          log=lambda m: None, shard_rows=5)
    assert heights == [5, 5, 5, 5, 2]  # the two files as one table, never in one frame
    out = read_records(tmp_path / out_name)
    assert out["id"].to_list() == _records(22)["id"].to_list() and set(out["split"]) == {"train"}
    assert out.drop("split").equals(_records(22).drop("split"))
    assert result.rows == 22 and result.funnel.pending == 22  # no answers: pending, none lost
    assert not any((tmp_path / ".curate-cache").iterdir())  # the scratch shards are gone


def test_a_stage_on_files_that_fails_leaves_no_output_and_no_scratch(tmp_path):
    from curate.pipeline import run_on_files

    source = tmp_path / "in.parquet"
    _records(12).write_parquet(source)

    def fail(df, opts, ctx):
        raise RuntimeError("broken stage")

    stage = Stage(name="toy", Options=StageOptions, run=fail, help="", reads=("prompt",), writes=("split",),
                  shardable=lambda opts: True)
    with pytest.raises(RuntimeError, match="broken stage"):
        run_on_files(stage, [source], tmp_path / "out.parquet", StageOptions(), log=lambda m: None, shard_rows=5)
    assert not (tmp_path / "out.parquet").exists() and not any((tmp_path / ".curate-cache").iterdir())


def test_input_files_that_share_an_id_fail_by_name(tmp_path):
    from curate.pipeline import run_on_files

    _records(6).write_parquet(tmp_path / "a.parquet")
    _records(4, start=5).write_parquet(tmp_path / "b.parquet")  # row 5 again
    with pytest.raises(records.SchemaError, match=r"input of toy.*appears 2 times"):
        run_on_files(_count_heights([]), [tmp_path / "a.parquet", tmp_path / "b.parquet"], tmp_path / "o.parquet",
                     StageOptions(), log=lambda m: None, shard_rows=4)


def test_a_stage_on_files_that_fit_one_shard_runs_on_one_frame(tmp_path):
    from curate.io import read_records
    from curate.pipeline import run_on_files

    source = tmp_path / "in.jsonl"
    _records(22).write_ndjson(source)
    heights: list[int] = []
    run_on_files(_count_heights(heights), [source], tmp_path / "out.parquet", StageOptions(), log=lambda m: None,
                 shard_rows=22)
    assert heights == [22] and read_records(tmp_path / "out.parquet").drop("split").equals(_records(22).drop("split"))


def test_balance_leaves_the_answers_on_disk_and_picks_what_it_picks_in_one_frame(tmp_path):
    from dataclasses import replace

    from curate.balance import STAGE as BALANCE

    seen = []

    def spy(df, opts, ctx):
        seen.append((df.columns, ctx.shards))
        return BALANCE.run(df, opts, ctx)

    n = 40
    df = _records(n).with_columns(
        pl.Series("prompt_harmful", [i % 3 != 0 for i in range(n)]),
        pl.Series("categories", [["S03"] if i % 3 else [] for i in range(n)]),
        pl.Series("response", [f"an answer {i}" if i % 4 else (None if i % 8 else "  ") for i in range(n)]))
    folder = tmp_path / "01-in"
    with shard_writer(folder, shard_rows=7) as writer:
        writer.add(df)
    opts = BALANCE.Options(seed=2, pending="auto", test_fraction=0.2)
    with shard_writer(tmp_path / "02-out", shard_rows=7) as writer:
        run_streamed(replace(BALANCE, run=spy), opts, _ctx(tmp_path), folder, writer)
    assert "response" not in seen[0][0] and seen[0][1] == shard_paths(folder)  # the answers were left on disk
    streamed = read_shards(tmp_path / "02-out")
    assert streamed.equals(run_stage(BALANCE, df, opts, _ctx(tmp_path / "whole")))
    # answered rows only (auto: some rows have answers), blank answers count as none
    pending = streamed.filter(pl.col("drop_reason") == "pending_synthesis")["source_id"].cast(pl.Int64)
    assert sorted(pending) == [i for i in range(n) if i % 4 == 0]


def test_a_parquet_file_is_read_by_row_groups_up_to_a_part(tmp_path, monkeypatch):
    from curate import io

    path = tmp_path / "in.parquet"
    _records(23).write_parquet(path, row_group_size=4)  # 6 row groups: 4, 4, 4, 4, 4, 3
    monkeypatch.setattr(io, "READ_BATCH_ROWS", 9)
    parts = list(io.iter_records(path))
    assert [p.height for p in parts] == [8, 8, 7]  # whole row groups, never split
    assert pl.concat(parts).equals(_records(23)) and io.read_records(path).equals(_records(23))
    monkeypatch.setattr(io, "READ_BATCH_ROWS", 3)
    assert [p.height for p in io.iter_records(path)] == [4, 4, 4, 4, 4, 3]  # a larger row group alone
    _records(0).write_parquet(tmp_path / "empty.parquet")
    assert [p.shape for p in io.iter_records(tmp_path / "empty.parquet")] == [(0, len(records.SCHEMA))]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv"])
def test_json_lines_and_csv_are_read_a_part_at_a_time(tmp_path, monkeypatch, suffix):
    from curate import io

    rows = _records(23).with_columns(  # a line break inside a value: CSV quotes it, JSON escapes it
        pl.when(pl.col("source_id") == "10").then(pl.lit("two\nlines, quoted")).otherwise(pl.col("prompt"))
        .alias("prompt"))
    path = io.write_records(rows, tmp_path / f"in{suffix}")
    monkeypatch.setattr(io, "READ_BATCH_ROWS", 9)
    parts = list(io.iter_records(path))
    assert [p.height for p in parts] == [9, 9, 5]
    assert pl.concat(parts).equals(rows) and io.read_records(path).equals(rows)


def test_a_json_lines_part_falls_back_to_the_line_reader_and_errors_name_the_line(tmp_path, monkeypatch):
    from curate import io

    monkeypatch.setattr(io, "READ_BATCH_ROWS", 4)
    lines = [json.dumps({"id": f"s:{i}", "source": "s", "source_id": str(i), "prompt": f"p {i}"}) for i in range(10)]
    lines[5] = json.dumps({"id": "s:5", "source": "s", "source_id": "5", "prompt": "p 5", "meta": {"note": "nested"}})
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines[:2] + [""] + lines[2:]) + "\n")  # a blank line, which does not count as a row
    got = io.read_records(path)
    assert got["source_id"].to_list() == [str(i) for i in range(10)]
    assert json.loads(got.filter(pl.col("source_id") == "5")["meta"][0]) == {"note": "nested"}
    path.write_text("\n".join(lines[:9] + ["{not json"]) + "\n")
    with pytest.raises(io.InputError, match=r"in\.jsonl:10: invalid JSON"):
        io.read_records(path)
    path.write_bytes(("\n".join(lines[:6]) + "\n").encode() + b'{"prompt": "\xff"}\n')
    with pytest.raises(io.InputError, match=r"in\.jsonl:7: not UTF-8"):
        io.read_records(path)


def test_dedup_asks_the_shards_which_rows_have_an_answer(tmp_path):
    from dataclasses import replace

    from curate.dedup import STAGE as DEDUP

    seen = []

    def spy(df, opts, ctx):
        seen.append(df.columns)
        return DEDUP.run(df, opts, ctx)

    base = [f"what is the safest way to store the chemical number {i} at home {i * 3}" for i in range(12)]
    prompts = base + [t + "?" for t in base]  # each base row has a near-duplicate
    answers = [f"an answer {i}" if i % 2 else "   " for i in range(12)] + [None] * 12  # odd base rows answered
    df = _records(len(prompts)).with_columns(pl.Series("prompt", prompts), pl.Series("response", answers))
    folder = tmp_path / "01-in"
    with shard_writer(folder, shard_rows=5) as writer:
        writer.add(df)
    opts = DEDUP.Options(threshold=0.7)
    with shard_writer(tmp_path / "02-out", shard_rows=5) as writer:
        run_streamed(replace(DEDUP, run=spy), opts, _ctx(tmp_path), folder, writer)
    assert "response" not in seen[0] and "prompt" not in seen[0]
    streamed = read_shards(tmp_path / "02-out")
    assert streamed.equals(run_stage(DEDUP, df, opts, _ctx(tmp_path / "whole")))
    kept = streamed.filter(~pl.col("is_duplicate"))["source_id"].cast(pl.Int64).to_list()
    # an answered row represents its pair though it is shorter; a blank answer is no answer: the longer row wins
    assert sorted(kept) == sorted(i if i % 2 else 12 + i for i in range(12))
