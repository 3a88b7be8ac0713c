"""One run summary (curate.summary) feeds the report and the dataset card; only RunStore reads the run folder."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from curate import records
from curate.balance import STAGE as BALANCE
from curate.kinds import record_kind
from curate.export import STAGE as EXPORT
from curate.export.card import TEMPLATE, TEMPLATE_DIR
from curate.report import write_report
from curate.report.data import load_run
from curate.stage import StageContext
from curate.store import MANIFEST, RunStore
from curate.summary import dataset_rows, summarize
from tests.test_export import base_rows, frame

REPO = Path(__file__).resolve().parents[1]


def manifest(stage: str, df: pl.DataFrame, **extra) -> dict:
    return {"stage": stage, "rows_in": df.height, "rows_out": df.height, "new_drops": {}, "quarantined": 0,
            "seconds": 0.5, **extra}


@pytest.fixture
def balanced(tmp_path) -> pl.DataFrame:
    ctx = StageContext(stage="balance", work_dir=tmp_path, log=lambda m: None)
    return BALANCE.run(frame(base_rows()), BALANCE.Options(test_fraction=0.25, seed=1, pending="keep",
                                                           max_per_dimension=25), ctx)


@pytest.fixture
def run_dir(tmp_path, balanced) -> Path:
    """A run folder as the pipeline leaves it: a recipe and three finished stages (quarantine and drops recorded)."""
    store = RunStore(tmp_path / "run")
    store.write_config({"name": "summary-test", "stages": []})
    collected = frame(base_rows())
    store.write_stage(1, "collect", collected, manifest("collect", collected, quarantined=2,
                                                        quarantine_reasons={"bad json": 2}))
    store.write_stage(2, "synthesize", collected, manifest("synthesize", collected,
                                                           new_drops={"synth_too_short": 3},
                                                           stats={"templates": {"en/refusal.v1": "abc123"}}))
    store.write_stage(3, "balance", balanced, manifest("balance", balanced, stats={"selected": 60, "seed": 1}))
    return store.root


def test_run_store_lists_finished_stages_in_order_and_skips_unfinished_ones(tmp_path):
    store = RunStore(tmp_path / "run")
    df = frame(base_rows()).head(3)
    store.write_stage(2, "dedup", df, manifest("dedup", df))
    store.write_stage(1, "collect", df, manifest("collect", df))
    (store.root / "03-classify").mkdir()  # killed before its manifest: not finished
    (store.root / "04-balance").mkdir()
    (store.root / "04-balance" / MANIFEST).write_text("{not json", encoding="utf-8")  # unreadable: not finished
    (store.root / "notes").mkdir()  # not a stage folder
    assert [s.name for s in store.finished_stages()] == ["collect", "dedup"]
    assert [m["stage"] for m in store.manifests()] == ["collect", "dedup"]
    assert [s.index for s in store.finished_stages()] == [1, 2]
    store.write_config({"name": "x", "api_key": "s3cret"})
    assert store.recipe_path.is_file() and "s3cret" not in store.recipe_path.read_text(encoding="utf-8")


def test_an_existing_run_is_read_without_creating_or_cleaning_anything(tmp_path):
    root = tmp_path / "live-run"
    root.mkdir()
    (root / ".tmp-1234-02-dedup").mkdir()  # another process may be writing this stage right now
    store = RunStore.existing(root)
    assert store.manifests() == []
    assert (root / ".tmp-1234-02-dedup").is_dir() and not (root / "cache").exists()
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        RunStore.existing(tmp_path / "missing")


def test_summary_counts_the_exported_rows_as_the_row_definitions_do(balanced, run_dir):
    summary = summarize(balanced, RunStore.existing(run_dir).manifests())
    live = balanced.filter(pl.col("drop_reason").is_null() & pl.col("response").is_not_null())
    rows = live.to_dicts()
    for row in rows:
        row["meta"] = records.load_meta(row["meta"])
    d = summary.dataset
    assert d.total == live.height == summary.funnel.kept
    assert d.kinds == dict(sorted(Counter(record_kind(r) or "unlabelled" for r in rows).items()))
    assert d.languages == dict(sorted(Counter(r["lang"] for r in rows).items()))
    assert d.splits == dict(Counter(r["split"] or "train" for r in rows))
    dims = Counter((dim, r["lang"]) for r in rows for dim in r["categories"] or
                   ["general" if record_kind(r) == "general" else "S00"])
    assert {(dim, lang): n for dim, by_lang in d.dimensions.items() for lang, n in by_lang.items()} == dict(dims)
    assert summary.funnel.collected == 92 and summary.funnel.quarantined == 2 and summary.funnel.balanced
    assert summary.quarantine_reasons == {"bad json": 2}
    assert [s.stage for s in summary.stages] == ["collect", "synthesize", "balance"]
    assert summary.balance == {"selected": 60, "seed": 1} and summary.stats("review") is None
    synthesized = [r for r in rows if (r["meta"].get("synthesize") or {}).get("model")]
    assert d.synthesis["synthesized"] == len(synthesized)
    # the sha comes from the synthesize manifest when the row does not carry it
    assert dict(d.synthesis["templates"]) == dict(Counter(
        f"{r['meta']['synthesize']['template']} (sha {'abc123' if r['meta']['synthesize']['template'] == 'en/refusal.v1' else '?'})"
        for r in synthesized))
    assert d.review["reviewed"] == sum(1 for r in rows if r["label_origin"] == "human" or r["meta"].get("review"))


def test_nothing_exportable_gives_a_summary_without_a_dataset(balanced):
    dropped = balanced.with_columns(pl.lit("duplicate").alias("drop_reason"))
    summary = summarize(dropped, [])
    assert summary.dataset is None and summary.funnel.kept == 0
    assert summary.funnel.dropped == {"duplicate": balanced.height}
    assert dataset_rows(dropped).height == 0


def test_report_and_card_show_the_same_run(balanced, run_dir, tmp_path):
    ctx = StageContext(stage="export", work_dir=tmp_path, run_dir=run_dir, log=lambda m: None)
    EXPORT.run(balanced, EXPORT.Options.model_validate({"out": tmp_path / "dataset", "plots": False}), ctx)
    card = (tmp_path / "dataset" / "README.md").read_text(encoding="utf-8")
    report = write_report(run_dir).with_suffix(".md").read_text(encoding="utf-8")
    summary = load_run(run_dir).summary
    f = summary.funnel
    assert f"{f.collected:,} records collected, {f.quarantined:,} input lines quarantined; {f.kept:,} exportable" in report
    assert f"| collected records | {f.collected:,} |" in card and f"| kept (exportable) | {f.kept:,} |" in card
    assert f"Exported: **{summary.dataset.total:,}** rows. Input lines quarantined (unparseable): {f.quarantined:,}." in card
    for stage in summary.stages:  # both list every finished stage from the run folder's manifests
        assert f"| {stage.stage} |" in card and f"| {stage.stage} |" in report
    assert (tmp_path / "dataset" / "recipe.yaml").read_text(encoding="utf-8") == \
        RunStore.existing(run_dir).recipe_path.read_text(encoding="utf-8")


def test_the_card_text_comes_from_the_template_file(balanced, tmp_path):
    EXPORT.run(balanced, EXPORT.Options.model_validate({"out": tmp_path / "dataset", "plots": False}),
               StageContext(stage="export", work_dir=tmp_path, log=lambda m: None))
    card = (tmp_path / "dataset" / "README.md").read_text(encoding="utf-8")
    template = (TEMPLATE_DIR / TEMPLATE).read_text(encoding="utf-8")
    headings = re.findall(r"^## .+$", card, re.M)
    assert len(headings) >= 8 and all(h in template for h in headings)
    assert "{{" not in card and "{%" not in card  # every placeholder filled


def test_only_the_run_store_knows_the_run_folder_layout():
    """No module but store.py names the manifest file or the recipe file, or globs stage folders."""
    layout = re.compile(r"_manifest\.json|config\.resolved\.yaml|glob\(f?\"\[0-9\]")
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "curate").rglob("*.py")
                 if p.name != "store.py" and layout.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
