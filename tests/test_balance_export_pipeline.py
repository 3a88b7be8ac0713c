"""collect -> balance (config file) -> export through the real pipeline runner: the folder explains the run."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from curate.pipeline import run_pipeline

datasets = pytest.importorskip("datasets")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_pipeline_ends_with_a_loadable_dataset_and_recipe(tmp_path):
    write_jsonl(tmp_path / "harmful.jsonl", [
        {"q": f"How do I hurt person number {i} without anyone noticing, step by step?",
         "a": f"<think>The user asks for harm to person {i}; I must refuse.</think>I can't help with hurting anyone."}
        for i in range(40)])
    write_jsonl(tmp_path / "benign.jsonl", [
        {"q": f"How do I kill python process number {i} on Linux?", "a": f"<think>Benign.</think>Run kill {i}."}
        for i in range(20)])
    write_jsonl(tmp_path / "general.jsonl", [
        {"q": f"What is {i} plus {i}?", "a": f"<think>{i}+{i}={2 * i}</think>{2 * i}"} for i in range(20)])
    (tmp_path / "balance.yaml").write_text(yaml.safe_dump(
        {"seed": 2, "test_fraction": 0.25, "kinds": {"refusal": 0.5, "helpful": 0.25, "general": 0.25}}))
    fields = {"prompt": "q", "response": "a"}
    pipeline = {
        "name": "t", "run_dir": str(tmp_path / "run"), "report": False,
        "stages": [
            {"collect": {"sources": [
                {"name": "harm", "path": "harmful.jsonl", "license": "CC BY-NC 4.0", "harmful": True, "fields": fields},
                {"name": "lookalike", "path": "benign.jsonl", "license": "MIT", "harmful": False, "fields": fields},
                {"name": "math", "path": "general.jsonl", "license": "MIT", "role": "general", "fields": fields}]}},
            {"balance": {"config": "balance.yaml"}},
            {"export": {"out": "dist", "format": "messages", "reasoning": "inline"}},
        ]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    result = run_pipeline(path, log=lambda m: None)
    assert result.funnel.balanced
    folder = tmp_path / "dist"
    ds = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))
    rows = [ex for s in ds for ex in ds[s]]
    # N = 40 / 0.5 = 80 -> refusal 40, helpful 20, general 20: every kind met exactly.
    assert Counter(r["kind"] for r in rows) == {"refusal": 40, "helpful": 20, "general": 20}
    assert set(ds) == {"train", "test"}
    assert all(r["messages"][1]["content"].startswith("<think>\n") for r in rows)
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "license: cc-by-nc-4.0" in card and "**Non-commercial:** rows from `harm`" in card
    assert "| balance |" in card and "| export |" not in card  # per-stage funnel from the manifests
    recipe = yaml.safe_load((folder / "recipe.yaml").read_text(encoding="utf-8"))
    assert recipe["stages"][1] == {"balance": {"config": "balance.yaml"}}


def test_cli_balance_with_config_file_then_export(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from curate import records
    from curate.cli import main
    from curate.io import read_records, write_records
    import polars as pl

    rows = [{"source": "s", "source_id": str(i), "source_license": "MIT", "lang": "en" if i % 2 else "zh",
             "prompt": f"p{i}", "response": f"r{i}", "prompt_harmful": True, "categories": ["S03" if i < 30 else "S05"]}
            for i in range(40)]
    for row in rows:
        row["id"] = records.make_id("s", row["source_id"])
    write_records(records.conform(pl.DataFrame(rows)), tmp_path / "in.jsonl")
    (tmp_path / "balance.yaml").write_text("seed: 1\nmax_per_dimension: 20\ntest_fraction: 0.2\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["balance", "--in", "in.jsonl", "--out", "bal.parquet", "--config", "balance.yaml",
                               "--shortfall-csv", "short.csv", "--min-per-dimension", "15"])
    assert res.exit_code == 0, res.output
    out = read_records(tmp_path / "bal.parquet")
    kept = out.filter(pl.col("drop_reason").is_null())
    assert Counter(c[0] for c in kept["categories"]) == {"S03": 20, "S05": 10}
    assert "S05" in (tmp_path / "short.csv").read_text(encoding="utf-8")  # S05 needs 5 more
    res = runner.invoke(main, ["export", "--in", "bal.parquet", "--out", "ds", "--format", "alpaca"])
    assert res.exit_code == 0, res.output
    ds = datasets.load_dataset(str(tmp_path / "ds"), cache_dir=str(tmp_path / "hf-cache"))
    assert sum(ds[s].num_rows for s in ds) == 30
    monkeypatch.delenv("HF_TOKEN", raising=False)
    res = runner.invoke(main, ["export", "--in", "bal.parquet", "--out", "ds2", "--push-to-hub", "me/x"])
    assert res.exit_code != 0 and "HF_TOKEN" in res.output and "Traceback" not in res.output
