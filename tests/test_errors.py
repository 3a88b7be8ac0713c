"""The one error family: a user-facing error ends the CLI with one line and its exit code, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import polars as pl
import pytest

from curate import records
from curate.errors import EXIT_FAILED, EXIT_USAGE, CurateError
from curate.io import write_records
from tests.servers.label_studio import free_port


def _curate(args: list[str], cwd, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, timeout=120)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _records_file(path) -> None:
    df = pl.DataFrame({"source": ["t", "t"], "source_id": ["1", "2"], "lang": ["en", "en"],
                       "prompt": ["how do I bake bread", "how do I pick a lock"]})
    df = df.with_columns(pl.Series("id", [records.make_id("t", s) for s in df["source_id"]]))
    write_records(records.conform(df), path)


def test_every_user_facing_error_derives_from_curate_error():
    from curate.classify.embedding.encoder import EncoderMissing
    from curate.classify.model import ModelError
    from curate.config import ConfigError
    from curate.dedup.decontaminate import EvalSetError
    from curate.export.folder import ExportError
    from curate.export.hub import HubError
    from curate.io import InputError
    from curate.pipeline import StageFailed
    from curate.records import SchemaError
    from curate.review.client import ReviewError
    from curate.taxonomy import TaxonomyError

    usage = [ConfigError, EvalSetError, InputError, TaxonomyError, ModelError, EncoderMissing, ExportError, HubError]
    failed = [ReviewError, StageFailed, SchemaError]
    assert all(issubclass(e, CurateError) and e.exit_code == EXIT_USAGE for e in usage)
    assert all(issubclass(e, CurateError) and e.exit_code == EXIT_FAILED for e in failed)


def test_label_studio_down_exits_1_with_one_line(tmp_path):
    _records_file(tmp_path / "in.jsonl")
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = _curate(["review", "push", "--in", "in.jsonl", "--project", "p", "--sample", "0"], tmp_path,
                   LABEL_STUDIO_URL=down, LABEL_STUDIO_API_KEY="k" * 40)
    assert proc.returncode == 1, proc.stderr
    line = _one_line(proc)
    assert "not reachable" in line and down in line and "k" * 40 not in line


@pytest.mark.parametrize("content, name, expected", [
    ("code,note\n1,x\n", "eval.csv", "no text column 'prompt'"),
    ("{not json\n", "eval.jsonl", "cannot read"),
    (None, "missing.csv", "file not found"),
])
def test_bad_dedup_against_file_exits_2_with_one_line(tmp_path, content, name, expected):
    _records_file(tmp_path / "in.jsonl")
    if content is not None:
        (tmp_path / name).write_text(content, encoding="utf-8")
    proc = _curate(["dedup", "--in", "in.jsonl", "--out", "out.jsonl", "--against", name], tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc)
    assert name in line and expected in line
    assert not (tmp_path / "out.jsonl").exists()
