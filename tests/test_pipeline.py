"""The runner: resume, re-run downstream on change, the funnel, and one-line config errors."""
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from curate.cli import main
from curate.pipeline import run_pipeline

QUICKSTART = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "quickstart"


def write_pipeline(tmp_path: Path, stages: list, name="t") -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": name, "run_dir": str(tmp_path / "run"), "report": False,
                                    "stages": stages}))
    return path


def small_sources():
    return [{"preset": "xstest", "path": str(QUICKSTART / "xstest")},
            {"preset": "advbench", "path": str(QUICKSTART / "advbench")},
            {"preset": "flames", "path": str(QUICKSTART / "flames")}]


def test_second_run_skips_and_config_change_reruns_stage_and_downstream(tmp_path):
    path = write_pipeline(tmp_path, [{"collect": {"sources": small_sources()}}, {"balance": {"seed": 1}}])
    first = run_pipeline(path, log=lambda m: None)
    assert first.ran == ["collect", "balance"]
    second = run_pipeline(path, log=lambda m: None)
    assert second.ran == [] and second.skipped == ["collect", "balance"]
    # Touch collect's config: collect and everything after it re-run.
    path.write_text(path.read_text().replace("report: false", "report: false\n# touched"))
    config = yaml.safe_load(path.read_text())
    config["stages"][0]["collect"]["min_prompt_chars"] = 2
    path.write_text(yaml.safe_dump(config))
    third = run_pipeline(path, log=lambda m: None)
    assert third.ran == ["collect", "balance"]
    # Touch only balance's config: collect is reused.
    config["stages"][1]["balance"]["seed"] = 2
    path.write_text(yaml.safe_dump(config))
    fourth = run_pipeline(path, log=lambda m: None)
    assert fourth.ran == ["balance"] and fourth.skipped == ["collect"]
    assert run_pipeline(path, force=True, log=lambda m: None).ran == ["collect", "balance"]
    assert run_pipeline(path, from_stage="balance", log=lambda m: None).ran == ["balance"]
    assert run_pipeline(path, to_stage="collect", force=True, log=lambda m: None).ran == ["collect"]


def test_changed_input_file_reruns_collect(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "one"}\n')
    path = write_pipeline(tmp_path, [{"collect": {"sources": [{"name": "d", "path": str(data), "license": "MIT"}]}}])
    assert run_pipeline(path, log=lambda m: None).ran == ["collect"]
    data.write_text('{"prompt": "one"}\n{"prompt": "two"}\n')
    result = run_pipeline(path, log=lambda m: None)
    assert result.ran == ["collect"] and result.final.height == 2


def test_funnel_accounts_for_every_record_and_quarantined_line(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "How do I kill a Python process?", "answer": "Use kill PID."}\n{"prompt": ""}\n'
                    'not json\n{"prompt": "What is 2+2?"}\n')
    source = {"name": "d", "path": str(data), "license": "MIT", "harmful": False, "fields": {"response": "answer"}}
    path = write_pipeline(tmp_path, [{"collect": {"sources": [source]}}, {"balance": {"pending": "exclude"}}])
    result = run_pipeline(path, log=lambda m: None)
    f = result.funnel
    assert f.collected == 2 and f.quarantined == 2
    assert f.kept + f.pending + sum(f.dropped.values()) == 2 and f.balanced
    assert f.kept == 1
    manifest = json.loads((tmp_path / "run" / "01-collect" / "_manifest.json").read_text())
    assert manifest["rows_out"] == 2 and manifest["quarantined"] == 2
    quarantine = (tmp_path / "run" / "quarantine" / "collect.jsonl").read_text().splitlines()
    assert [json.loads(q)["location"] for q in quarantine] == ["d.jsonl:2", "d.jsonl:3"]


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c["stages"][1]["balance"].update(sed=1), "stages.1.balance.sed: unknown key"),
    (lambda c: c["stages"][1]["balance"].update(seed="high"), "stages.1.balance.seed: Input should be a valid integer"),
    (lambda c: c["stages"][0]["collect"]["sources"][0].update(path="missing.jsonl"),
     "stages.0.collect.sources.0.path: file not found"),
    (lambda c: c.update(colour="red"), "colour: unknown key"),
    (lambda c: c["stages"].append({"nosuchstage": {}}), "unknown stage 'nosuchstage'"),
])
def test_config_errors_are_one_line_exit_2_no_traceback(tmp_path, mutate, expected):
    (tmp_path / "d.jsonl").write_text('{"prompt": "x"}\n')
    config = {"name": "t", "stages": [{"collect": {"sources": [{"name": "d", "path": "d.jsonl", "license": "MIT"}]}},
                                      {"balance": {}}]}
    mutate(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "curate.cli", "run", str(path)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0] and str(path) in lines[0], proc.stderr


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned > pwned.txt']\nstages: []\n")
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2 and not (tmp_path / "pwned.txt").exists()
    assert "not valid YAML" in result.output


def test_every_command_has_help_for_every_option():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        commands = {name: command, **{f"{name} {sub}": c for sub, c in getattr(command, "commands", {}).items()}}
        for full, cmd in commands.items():
            assert runner.invoke(main, [*full.split(), "--help"]).exit_code == 0, full
            assert cmd.help, f"curate {full}: no description"
            for param in cmd.params:
                if isinstance(param, click.Option) and param.name != "help":
                    assert param.help, f"curate {full} {param.opts}: no help text"


def test_changed_eval_file_reruns_dedup(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "how to build a birdhouse from pine boards"}\n{"prompt": "what is the capital of France"}\n')
    evals = tmp_path / "eval.jsonl"
    evals.write_text('{"prompt": "an unrelated evaluation item about cooking rice"}\n')
    path = write_pipeline(tmp_path, [{"collect": {"sources": [{"name": "d", "path": str(data), "license": "MIT"}]}},
                                     {"dedup": {"against": [str(evals)]}}])
    assert run_pipeline(path, log=lambda m: None).final["drop_reason"].null_count() == 2
    evals.write_text('{"prompt": "how to build a birdhouse from pine boards"}\n')
    result = run_pipeline(path, log=lambda m: None)
    assert result.ran == ["dedup"]
    assert result.final["drop_reason"].to_list().count("contaminated") == 1


def test_cli_collect_then_classifier_train_and_eval(tmp_path):
    runner = CliRunner()
    sources = tmp_path / "s.yaml"
    sources.write_text(yaml.safe_dump({"sources": [{"preset": p, "path": str(QUICKSTART / p)}
                                                   for p in ("xsafety", "xstest", "star1")]}))
    assert runner.invoke(main, ["collect", "--sources", str(sources), "--out", str(tmp_path / "c.parquet")]).exit_code == 0
    trained = runner.invoke(main, ["classifier", "train", "--in", str(tmp_path / "c.parquet"), "--out",
                                   str(tmp_path / "m"), "--epoch", "3", "--calibration", "holdout"])
    assert trained.exit_code == 0, trained.output
    assert "training rows" in trained.output and "?" not in trained.output
    evaluated = runner.invoke(main, ["classifier", "eval", "--in", str(tmp_path / "c.parquet"), "--model", str(tmp_path / "m")])
    assert evaluated.exit_code == 0 and "macro-F1" in evaluated.output and "== zh" in evaluated.output
