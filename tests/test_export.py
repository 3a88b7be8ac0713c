"""Export: hub-style folder round trips through datasets.load_dataset; the card tells the truth."""
from __future__ import annotations

import json
import re
import socket
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from curate import records
from curate.balance import STAGE as BALANCE
from curate.export import STAGE as EXPORT
from curate.export.folder import ExportError
from curate.export.hub import HubError
from curate.licenses import normalize, summarize
from curate.stage import StageContext
from curate.store import RunStore

datasets = pytest.importorskip("datasets")

SECRET = "hf_TESTSECRET_d0_not_leak_4242"


def base_rows():
    rows = []

    def add(n, source, license_, **fields):
        for _ in range(n):
            i = len(rows)
            row = {"source": source, "source_id": str(i), "source_license": license_, "lang": "en",
                   "prompt": f"prompt {i}", "response": f"answer {i}", "reasoning": f"thinking {i}",
                   "prompt_harmful": True, "response_kind": "refusal", "categories": ["S03"],
                   "label_origin": "classifier", "dup_cluster": f"c{i // 2}",
                   "meta": {"synthesize": {"model": "writer-1", "template": "en/refusal.v1", "judge_score": 8}}}
            row.update(fields)
            row["meta"] = json.dumps(row["meta"])
            row["id"] = records.make_id(source, row["source_id"])
            rows.append(row)

    add(30, "xsafety", "Apache-2.0")
    add(20, "xsafety", "Apache-2.0", lang="zh", categories=["S05", "S03"], label_origin="human",
        meta={"review": {"agreed": True}, "synthesize": {"model": "writer-1", "template": "zh/refusal.v1"}})
    add(10, "s-eval", "CC BY-NC-SA 4.0", lang="zh", categories=["S09"], response_kind="safe_completion")
    add(12, "xstest", "CC-BY-4.0", prompt_harmful=False, response_kind="helpful", categories=[],
        meta={"review": {"agreed": False}})
    add(8, "gsm8k", "MIT", prompt_harmful=None, response_kind=None, categories=[], reasoning=None,
        meta={"collect": {"role": "general"}})
    add(5, "xsafety", "Apache-2.0", response=None, reasoning=None)  # pending synthesis
    add(4, "xsafety", "Apache-2.0", drop_reason="duplicate")
    add(3, "xsafety", "Apache-2.0", drop_reason="synth_too_short", response="short")
    return rows


def frame(rows):
    return records.validate(records.conform(pl.DataFrame(rows, infer_schema_length=None)))


@pytest.fixture
def balanced(tmp_path):
    """Rows through the real balance stage, keeping pending rows eligible so export must leave them out."""
    df = frame(base_rows())
    ctx = StageContext(stage="balance", work_dir=tmp_path, log=lambda m: None)
    return BALANCE.run(df, BALANCE.Options(test_fraction=0.25, seed=1, pending="keep", max_per_dimension=25), ctx)


def export(df, tmp_path, run_dir=None, **opts):
    ctx = StageContext(stage="export", work_dir=tmp_path, run_dir=run_dir, log=lambda m: None)
    out = EXPORT.run(df, EXPORT.Options.model_validate({"out": tmp_path / "dataset", **opts}), ctx)
    assert out.equals(df)  # export returns its input unchanged
    return tmp_path / "dataset", ctx


def load(folder, tmp_path):
    return datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))


def expected_rows(df):
    live = df.filter(pl.col("drop_reason").is_null() & pl.col("response").is_not_null())
    return {row["id"]: row for row in live.iter_rows(named=True)}


@pytest.mark.parametrize("fmt", ["messages", "sharegpt", "alpaca"])
@pytest.mark.parametrize("reasoning", ["inline", "field"])
def test_load_dataset_round_trip(balanced, tmp_path, fmt, reasoning):
    folder, ctx = export(balanced, tmp_path, format=fmt, reasoning=reasoning)
    ds = load(folder, tmp_path)
    want = expected_rows(balanced)
    by_split = Counter(r["split"] for r in want.values())
    assert {s: ds[s].num_rows for s in ds} == dict(by_split) == ctx.stats["splits"]
    seen = set()
    for split in ds:
        for ex in ds[split]:
            row = want[ex["id"]]
            assert row["split"] == split
            seen.add(ex["id"])
            if fmt == "messages":
                user, answer = ex["messages"][0]["content"], ex["messages"][1]["content"]
                assert [m["role"] for m in ex["messages"]] == ["user", "assistant"]
            elif fmt == "sharegpt":
                user, answer = ex["conversations"][0]["value"], ex["conversations"][1]["value"]
                assert [m["from"] for m in ex["conversations"]] == ["human", "gpt"]
            else:
                user, answer = ex["instruction"], ex["output"]
                assert ex["input"] == ""
            assert user == row["prompt"]
            if reasoning == "inline" and row["reasoning"]:
                assert answer == f"<think>\n{row['reasoning']}\n</think>\n\n{row['response']}"
            else:
                assert answer == row["response"]
            if reasoning == "field":
                assert ex["reasoning"] == row["reasoning"]
            else:
                assert "reasoning" not in ex
            assert ex["categories"] == row["categories"] and ex["lang"] == row["lang"]
    assert seen == set(want)


def test_pending_and_dropped_rows_stay_out_and_are_counted(balanced, tmp_path):
    pending = balanced.filter(pl.col("drop_reason").is_null() & pl.col("response").is_null()).height
    assert pending > 0  # the fixture kept pending rows eligible, so some were selected
    folder, ctx = export(balanced, tmp_path)
    ds = load(folder, tmp_path)
    ids = {i for s in ds for i in ds[s]["id"]}
    dropped = set(balanced.filter(pl.col("drop_reason").is_not_null())["id"])
    assert not ids & dropped
    assert ctx.stats["pending_left_out"] == pending
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert f"**{pending:,}** kept rows had no response yet" in card
    for reason, n in Counter(balanced["drop_reason"].drop_nulls()).items():
        assert f"| dropped: {reason} | {n:,} |" in card


def test_license_rule():
    assert normalize("CC BY-NC-SA 4.0") == "cc-by-nc-sa-4.0" and normalize("MIT License") == "mit"
    assert normalize(None) == "other" and normalize("my own terms") == "other"
    permissive = summarize([("a", "MIT"), ("b", "Apache-2.0"), ("c", "CC-BY-4.0")])
    assert permissive.license == "cc-by-4.0" and permissive.commercial_use
    mixed = summarize([("a", "MIT"), ("b", "CC BY-NC 4.0"), ("c", "CC-BY-SA-4.0")])
    assert mixed.license == "cc-by-nc-4.0" and mixed.non_commercial == ["b"] and not mixed.commercial_use
    unknown = summarize([("a", "MIT"), ("b", None)])
    assert unknown.license == "other" and unknown.unknown == ["b"]


def card_yaml(folder):
    from huggingface_hub import DatasetCard

    return DatasetCard.load(folder / "README.md").data.to_dict()


def test_one_non_commercial_source_makes_the_card_non_commercial(balanced, tmp_path):
    folder, _ = export(balanced, tmp_path)
    meta = card_yaml(folder)
    assert meta["license"] == "cc-by-nc-sa-4.0"
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "**Non-commercial:** rows from `s-eval`" in card
    # Without the non-commercial source the card is permissive again.
    df = balanced.filter(pl.col("source") != "s-eval")
    folder, _ = export(df, tmp_path)
    assert card_yaml(folder)["license"] == "cc-by-4.0"
    assert "Non-commercial" not in (folder / "README.md").read_text(encoding="utf-8")


def test_license_follows_exported_rows_only(balanced, tmp_path):
    """A non-commercial source whose rows were all dropped does not bind the dataset."""
    df = balanced.with_columns(
        pl.when(pl.col("source") == "s-eval").then(pl.lit("not_selected"))
        .otherwise(pl.col("drop_reason")).alias("drop_reason"))
    folder, _ = export(df, tmp_path)
    assert card_yaml(folder)["license"] == "cc-by-4.0"
    sources = {r[0]: r for r in table_after((folder / "README.md").read_text(encoding="utf-8"), "## Sources")}
    assert sources["s-eval"][1] == "0" and "non-commercial" in sources["s-eval"][3]


def table_after(card: str, heading: str) -> list[list[str]]:
    section = card.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [l for l in section.splitlines() if l.startswith("|")]
    return [[c.strip() for c in l.strip("|").split("|")] for l in lines[2:]]


def test_card_counts_equal_data_counts(balanced, tmp_path):
    folder, _ = export(balanced, tmp_path)
    ds = load(folder, tmp_path)
    card = (folder / "README.md").read_text(encoding="utf-8")
    meta = card_yaml(folder)
    rows = [ex for s in ds for ex in ds[s]]
    # splits
    splits = {r[0]: int(r[1].replace(",", "")) for r in table_after(card, "Format `") if r[0] != "**total**"}
    assert splits == {s: ds[s].num_rows for s in ds}
    assert {c["split"] for c in meta["configs"][0]["data_files"]} == set(ds)
    assert sorted(meta["language"]) == sorted({r["lang"] for r in rows})
    assert meta["size_categories"] == ["n<1K"]
    # taxonomy: dimension x language
    want = Counter()
    for r in rows:
        dims = r["categories"] or (["general"] if r["kind"] == "general" else ["S00"])
        for d in dims:
            want[d, r["lang"]] += 1
    header = [l for l in card.split("## Taxonomy", 1)[1].splitlines() if l.startswith("|")][0]
    langs = [c.strip() for c in header.strip("|").split("|")][3:-1]
    got = Counter()
    for r in table_after(card, "## Taxonomy"):
        for lang, n in zip(langs, r[3:-1]):
            if int(n):
                got[r[0], lang] = int(n)
    assert got == want
    from curate.taxonomy import Taxonomy

    names = {d.id: d for d in Taxonomy.load().dimensions}
    table = {r[0]: r for r in table_after(card, "## Taxonomy")}
    assert table["S03"][1:3] == [names["S03"].name_en, names["S03"].name_zh]
    assert all(table[d][-1] == "0" for d in names if not any(k[0] == d for k in want))  # gaps shown as 0
    # kinds and sources
    kinds = {r[0]: int(r[2]) for r in table_after(card, "## Kinds") if len(r) == 3}
    assert kinds == dict(Counter(r["kind"] for r in rows))
    sources = {r[0]: int(r[1].replace(",", "")) for r in table_after(card, "## Sources")}
    exported_by_source = Counter(r["source"] for r in rows)
    assert {s: n for s, n in sources.items() if n} == dict(exported_by_source)
    # review coverage
    reviewed = sum(1 for r in rows if r["source"] == "xsafety" and r["lang"] == "zh") + sum(
        1 for r in rows if r["source"] == "xstest")
    assert f"{reviewed:,} of {len(rows):,} exported rows" in card
    synthesized = sum(1 for r in rows if r["source"] in ("xsafety", "s-eval"))
    assert f"{synthesized:,} answers were synthesized by a model; {len(rows) - synthesized:,} come from" in card
    assert f"`writer-1` ({synthesized:,})" in card


def test_plots_are_written_and_linked(balanced, tmp_path):
    folder, _ = export(balanced, tmp_path)
    card = (folder / "README.md").read_text(encoding="utf-8")
    for name in ("dimensions", "languages", "kinds"):
        png = folder / "images" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(images/{name}.png)" in card


def test_recipe_and_funnel_from_run_manifests(balanced, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    store = RunStore(tmp_path / "run")
    store.write_config({"name": "t", "stages": [{"export": {"push_to_hub": "me/x"}}], "hub": {"token": SECRET}})
    store.write_stage(1, "collect", balanced, {"stage": "collect", "rows_in": 0, "rows_out": balanced.height,
                                               "new_drops": {}, "quarantined": 2})
    store.write_stage(2, "balance", balanced, {"stage": "balance", "rows_in": balanced.height,
                                               "rows_out": balanced.height, "new_drops": {"not_selected": 7},
                                               "stats": {"selected": 5, "target_total": 9, "seed": 1,
                                                         "shortfall_total": 4, "ineligible": {"pending_synthesis": 3},
                                                         "shortfalls": [
                                                             {"kind": "refusal", "dimension": "S08", "lang": "zh",
                                                              "target": 4, "achieved": 0, "shortfall": 4}]}})
    folder, _ = export(balanced, tmp_path, run_dir=store.root)
    recipe = (folder / "recipe.yaml").read_text(encoding="utf-8")
    assert "push_to_hub: me/x" in recipe
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert f"| balance | {balanced.height} | not_selected: 7 |" in card
    assert "| refusal | S08 | zh | 4 | 0 | 4 |" in card
    assert "Input lines quarantined (unparseable): 2" in card
    assert "Balance could not use: 3 `pending_synthesis` (pending synthesis (no response))." in card
    assert "curate run recipe.yaml" in card


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_push_without_token_fails_clearly_before_writing(balanced, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(HubError, match="HF_TOKEN"):
        export(balanced, tmp_path, push_to_hub="me/safety")
    assert not (tmp_path / "dataset").exists()


def test_no_secret_in_any_written_file(balanced, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens: the push must fail
    store = RunStore(tmp_path / "run")
    store.write_config({"name": "t", "api_key": SECRET, "stages": [{"export": {"push_to_hub": "me/x"}}]})
    with pytest.raises(HubError) as err:
        export(balanced, tmp_path, run_dir=store.root, push_to_hub="me/safety")
    assert SECRET not in str(err.value)
    folder = tmp_path / "dataset"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "README.md" for p in files) and any(p.suffix == ".parquet" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_refuses_to_replace_an_unrelated_folder(balanced, tmp_path):
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "thesis.tex").write_text("mine", encoding="utf-8")
    with pytest.raises(ExportError, match="not an earlier export"):
        export(balanced, tmp_path)
    assert (tmp_path / "dataset" / "thesis.tex").exists()


def test_re_export_replaces_the_previous_one(balanced, tmp_path):
    folder, _ = export(balanced, tmp_path, shard_rows=10)
    assert len(list((folder / "data").glob("train-*.parquet"))) > 1
    folder, _ = export(balanced, tmp_path)
    assert [p.name for p in (folder / "data").glob("train-*")] == ["train-00000-of-00001.parquet"]
    ds = load(folder, tmp_path)
    assert ds["train"].num_rows == Counter(r["split"] for r in expected_rows(balanced).values())["train"]


def test_nothing_to_export_is_a_clear_error(tmp_path):
    rows = base_rows()[-7:]  # only dropped rows
    with pytest.raises(ExportError, match="nothing to export"):
        export(frame(rows), tmp_path)


def test_card_list_lines_stay_apart():
    """The drop reasons are one expression: a {% for %} block there ate its line's newline (trim_blocks), and the
    quickstart card read "`synth_reasoning_repeats_answer`: 2- sample: 16 of 3,034 prompts ..."."""
    from curate.export.card import _environment

    template = (_environment().get_template("dataset_card.md.j2").environment
                .from_string("- filters: {{ drops | reasons }}\n{% if more %}\n- sample: 16\n{% endif %}\n"))
    assert template.render(drops={"synth_a": 2, "synth_b": 1}, more=True) == \
        "- filters: `synth_a`: 2, `synth_b`: 1\n- sample: 16\n"
    assert template.render(drops={}, more=False) == "- filters: none dropped\n"
    card_source = (Path(__file__).resolve().parents[1] / "curate" / "templates" / "card" / "dataset_card.md.j2").read_text()
    line = next(l for l in card_source.splitlines() if l.startswith("- filters (answers dropped):"))
    assert "{% endfor %}" not in line and "| reasons }}" in line


def test_export_from_shards_writes_what_it_writes_from_one_frame(balanced, tmp_path):
    """Through the runner, export reads the rows a shard at a time (ctx.shards); the dataset is the same."""
    from dataclasses import replace

    from curate.store import shard_paths, shard_writer
    from curate.streaming import run_streamed

    given = []

    def spy(rows, opts, ctx):
        given.append(ctx.shards)
        return EXPORT.run(rows, opts, ctx)

    whole, _ = export(balanced, tmp_path / "whole")
    with shard_writer(tmp_path / "01-in", shard_rows=7) as writer:
        writer.add(balanced)
    ctx = StageContext(stage="export", work_dir=tmp_path, log=lambda m: None)
    opts = EXPORT.Options.model_validate({"out": tmp_path / "sharded" / "dataset"})
    with shard_writer(tmp_path / "02-out", shard_rows=7) as writer:
        run_streamed(replace(EXPORT, run=spy), opts, ctx, tmp_path / "01-in", writer)
    assert given == [shard_paths(tmp_path / "01-in")] and len(given[0]) > 10  # export was given the shards
    assert ctx.shards is None  # and they were taken back after
    sharded = tmp_path / "sharded" / "dataset"
    data = sorted(p.relative_to(whole) for p in whole.rglob("*.parquet"))
    assert data and data == sorted(p.relative_to(sharded) for p in sharded.rglob("*.parquet"))
    for path in data:
        assert pl.read_parquet(whole / path).equals(pl.read_parquet(sharded / path)), path
    assert (whole / "README.md").read_text(encoding="utf-8") == (sharded / "README.md").read_text(encoding="utf-8")
