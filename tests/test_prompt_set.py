"""A run with no answers yet ends with a prompt set (balanced by the quotas), and a later synthesis run reads it."""
from __future__ import annotations

import json

import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from curate.cli import main
from curate.io import read_records
from curate.pipeline import run_pipeline
from tests.fixtures.openai_server import _openai_server_session, openai_server  # noqa: F401
from tests.test_synthesize_pipeline import answer

pytest.importorskip("curate.taxonomy", reason="curate.taxonomy (the taxonomy issue) is not in this tree")
datasets = pytest.importorskip("datasets")


def write_pipeline(tmp_path, repo, export: dict | None = None):
    data = repo / "pipelines/data/quickstart"
    recipe = {"name": "prompts", "run_dir": str(tmp_path / "run"), "report": False, "stages": [
        {"collect": {"sources": [{"preset": "xstest", "path": str(data / "xstest")},
                                 {"preset": "harmbench", "path": str(data / "harmbench")}]}},
        {"synthesize": {}},
        {"balance": {"seed": 3, "test_fraction": 0.2, "kinds": {"refusal": 0.5, "helpful": 0.5}, "total": 200}},
        {"export": export or {}}]}
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_run_without_endpoint_exports_the_balanced_prompt_set(tmp_path, repo, monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    logs: list[str] = []
    result = run_pipeline(write_pipeline(tmp_path, repo), log=logs.append)
    folder = result.run_dir / "export"
    manifest = json.loads((result.run_dir / "03-balance" / "_manifest.json").read_text())
    assert manifest["stats"]["pending"] == "keep" and manifest["stats"]["selected"] == 200
    assert any("selecting prompts for synthesis" in line for line in logs)

    ds = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))
    assert sum(ds[s].num_rows for s in ds) == 200 and set(ds) == {"train", "test"}
    assert not {"response", "reasoning", "response_kind", "messages"} & set(ds["train"].column_names)
    kinds = pl.DataFrame(ds["train"].to_list() + ds["test"].to_list())["prompt_harmful"].value_counts()
    assert dict(kinds.iter_rows()) == {True: 100, False: 100}  # the quotas, applied before synthesis
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "prompt set awaiting synthesis" in card and "How the answers were written" not in card
    assert "kept rows had no response yet" not in card
    export_stats = json.loads((result.run_dir / "04-export" / "_manifest.json").read_text())["stats"]
    assert export_stats["content"] == "prompts" and export_stats["exported"] == 200

    back = read_records(folder / "data")  # the prompt set is a records file
    live = result.final.filter(pl.col("drop_reason").is_null())
    assert back.height == 200 and set(back["id"]) == set(live["id"])
    assert back.join(live, on="id").filter(pl.col("split") != pl.col("split_right")).height == 0


def test_later_synthesis_run_answers_the_prompt_set(tmp_path, repo, monkeypatch, openai_server):
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    result = run_pipeline(write_pipeline(tmp_path, repo), log=lambda m: None)
    openai_server.responder = answer
    out = tmp_path / "answered.parquet"
    cli = CliRunner().invoke(main, ["synthesize", "--in", str(result.run_dir / "export" / "data"), "--out", str(out),
                                    "--base-url", openai_server.base_url, "--model", "writer", "--kind-detector",
                                    "phrases", "--near-duplicate-threshold", "0"], env={"OPENAI_API_KEY": "sk-x"})
    assert cli.exit_code == 0, cli.output
    answered = read_records(out)
    assert answered.height == 200 and openai_server.count >= 200
    assert answered.filter(pl.col("drop_reason").is_null() & pl.col("response").is_null()).height == 0


def test_export_content_answers_still_refuses_an_unanswered_run(tmp_path, repo, monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    from curate.pipeline import StageFailed

    with pytest.raises(StageFailed, match="nothing to export: of .* none is kept with a response"):
        run_pipeline(write_pipeline(tmp_path, repo, {"content": "answers"}), log=lambda m: None)
