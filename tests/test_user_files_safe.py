"""Issue 15, findings 1-4 and 9: curate never deletes, overwrites or writes outside what it owns.

Each test is the issue's repro (it failed before the fix): export into a folder that merely looks like an
export, a run folder holding other programs' temp files, two runs into one run folder, two collect outputs
sharing a quarantine file, and a run name that is a path.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from curate.cli import main
from curate.config import ConfigError
from curate.io import write_records
from curate.pipeline import run_pipeline
from curate.store import LOCK_FILE, TMP_MARKER, TMP_PREFIX, RunLocked, RunStore, staged_folder
from tests.fixtures.openai_server import _openai_server_session, openai_server  # noqa: F401
from tests.test_export import base_rows, frame

REPO = Path(__file__).resolve().parents[1]
XSAFETY = REPO / "pipelines" / "data" / "quickstart" / "xsafety"


def cli(*args: str, cwd: Path | None = None):
    old = Path.cwd()
    try:
        if cwd:
            os.chdir(cwd)
        return CliRunner().invoke(main, list(args), catch_exceptions=True)
    finally:
        os.chdir(old)


def one_error_line(result) -> str:
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and lines[-1].startswith("error:"), result.output
    return lines[-1]


def user_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def records_file(tmp_path) -> Path:
    path = tmp_path / "balanced.parquet"
    write_records(frame(base_rows()), path)
    return path


# -- 1. export replaces only a folder it wrote itself -------------------------------------------------------

def test_export_refuses_a_project_folder_that_looks_like_an_export(tmp_path, records_file):
    project = tmp_path / "v"
    (project / "data").mkdir(parents=True)
    (project / "src").mkdir()
    (project / "README.md").write_text("x\n")
    (project / "src" / "a.py").write_text("keep\n")
    before = user_tree(project)
    result = cli("export", "--in", str(records_file), "--out", str(project))
    assert result.exit_code == 2
    assert "not an earlier export" in one_error_line(result)
    assert user_tree(project) == before


def test_export_refuses_the_current_folder(tmp_path, records_file):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine\n")
    result = cli("export", "--in", str(records_file), "--out", ".", cwd=work)
    assert result.exit_code == 2, result.output
    one_error_line(result)
    assert (work / "notes.txt").read_text() == "mine\n" and sorted(os.listdir(work)) == ["notes.txt"]


def test_export_replaces_its_own_earlier_export_and_an_empty_folder(tmp_path, records_file):
    out = tmp_path / "empty"
    out.mkdir()
    assert cli("export", "--in", str(records_file), "--out", str(out)).exit_code == 0
    assert (out / ".curate-export").is_file() and (out / "README.md").is_file()
    result = cli("export", "--in", str(records_file), "--out", str(out), "--format", "alpaca")
    assert result.exit_code == 0, result.output
    assert not any(p.name.startswith(TMP_PREFIX) for p in tmp_path.iterdir())


def test_an_export_from_before_the_marker_is_replaced_only_in_its_run_folder_and_only_if_all_export_files(tmp_path):
    from curate.export import STAGE as EXPORT
    from curate.export.folder import ExportError
    from curate.stage import StageContext

    run_dir = tmp_path / "run"
    legacy = run_dir / "export"
    (legacy / "data").mkdir(parents=True)
    (legacy / "images").mkdir()
    for name in ("README.md", "recipe.yaml", "images/kinds.png", "data/train-00000-of-00001.parquet"):
        (legacy / name).write_text("old export\n")
    ctx = StageContext(stage="export", work_dir=tmp_path, run_dir=run_dir, log=lambda m: None)
    df = frame(base_rows())
    EXPORT.run(df, EXPORT.Options(plots=False), ctx)
    assert (legacy / ".curate-export").is_file() and not (legacy / "images" / "kinds.png").exists()
    (legacy / ".curate-export").unlink()
    (legacy / "notes.txt").write_text("mine\n")
    with pytest.raises(ExportError, match="not an earlier export"):
        EXPORT.run(df, EXPORT.Options(plots=False), ctx)
    assert (legacy / "notes.txt").read_text() == "mine\n"


def test_records_output_folder_with_user_files_is_refused(tmp_path, records_file):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("mine\n")
    result = cli("balance", "--in", str(records_file), "--out", str(folder))
    assert result.exit_code == 2
    assert "not record shards" in one_error_line(result)
    assert (folder / "thesis.tex").read_text() == "mine\n"


# -- 2. only curate's own, marked temp folders are cleaned up -----------------------------------------------

def test_run_dir_cleanup_leaves_other_programs_temp_files(tmp_path):
    shared = tmp_path / "tmp"
    shared.mkdir()
    (shared / ".tmp-editor-swap").write_text("other program\n")
    (shared / ".tmp-build").mkdir()
    (shared / ".tmp-build" / "obj.o").write_text("other program\n")
    unmarked = shared / f"{TMP_PREFIX}0000abcd-lookalike"  # our prefix, but not our marker: not ours
    unmarked.mkdir()
    (unmarked / "data").write_text("other program\n")
    (shared / f"{TMP_PREFIX}0000abcd-notes.txt").write_text("other program\n")  # not a file a run writes
    ours = shared / f"{TMP_PREFIX}deadbeef-01-collect"
    ours.mkdir()
    (ours / TMP_MARKER).write_text("1\n")
    born_unmarked = shared / f"{TMP_PREFIX}feed0000-02-dedup"  # killed between its mkdir and its marker
    born_unmarked.mkdir()
    killed_swaps = [shared / f"{TMP_PREFIX}0badf00d-{name}" for name in ("03-classify", "export")]
    for path in killed_swaps:  # killed after the marker's removal, before the rename: unmarked, full
        path.mkdir()
        (path / "part-00000.parquet").write_text("written\n")
    killed_writes = [shared / f"{TMP_PREFIX}0123abcd-{name}" for name in ("report.md", "shortfall.csv")]
    for path in killed_writes:  # a run killed while it wrote its report or shortfall table
        path.write_text("half\n")
    before = user_tree(shared)
    with RunStore(shared).locked():
        pass
    after = user_tree(shared)
    assert not ours.exists() and not born_unmarked.exists() and not any(p.exists() for p in killed_writes)
    assert not any(p.exists() for p in killed_swaps)
    assert unmarked.is_dir()  # our name pattern but not empty, not marked, not a run's folder: someone else's, kept
    ours_names = (ours.name, born_unmarked.name, *(p.name for p in killed_writes + killed_swaps))
    assert {k: v for k, v in before.items() if not k.startswith(ours_names)} == \
        {k: v for k, v in after.items() if k not in ("cache", LOCK_FILE)}


def test_staged_folder_leaves_no_marker_in_the_output(tmp_path):
    with staged_folder(tmp_path / "out") as tmp:
        assert (tmp / TMP_MARKER).is_file() and tmp.name.startswith(TMP_PREFIX)
        (tmp / "part-00000.parquet").write_bytes(b"x")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["part-00000.parquet"]


# -- 3. one run per run folder; a dead holder's lock is taken over ------------------------------------------

HOLDER = """
import sys, time
from curate.store import RunStore
with RunStore(sys.argv[1]).locked():
    print("locked", flush=True)
    time.sleep(120)
"""


def collect_pipeline(tmp_path: Path, **extra) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "lock", "report": False, "stages": [
        {"collect": {"sources": [{"preset": "xsafety", "path": str(XSAFETY), "limit": 20}]}}], **extra}))
    return path


def test_second_run_into_a_held_run_folder_refuses_naming_the_holder(tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "locked"
        in_progress = run_dir / f"{TMP_PREFIX}cafe0000-01-collect"  # the holder's temp output, being written
        in_progress.mkdir()
        (in_progress / TMP_MARKER).write_text(f"{holder.pid}\n")
        result = cli("run", str(collect_pipeline(tmp_path)), "--run-dir", str(run_dir))
        assert result.exit_code == 2
        line = one_error_line(result)
        assert f"PID {holder.pid}" in line
        assert in_progress.is_dir()  # the second run touched nothing of the first's
        assert not (run_dir / "01-collect").exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder died without releasing anything: its lock is stale, the next run takes it over and
    # cleans the dead run's temp folder.
    result = cli("run", str(collect_pipeline(tmp_path)), "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    assert (run_dir / "01-collect" / "_manifest.json").is_file() and not in_progress.exists()


def test_two_real_runs_staggered_one_refuses_and_the_other_finishes(tmp_path, openai_server):  # noqa: F811
    openai_server.latency = 0.3  # synthesis takes a few seconds: long enough to overlap
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump({"name": "slow", "report": False, "stages": [
        {"collect": {"sources": [{"preset": "xsafety", "path": str(XSAFETY), "limit": 12}]}},
        {"synthesize": {"base_url": openai_server.base_url, "model": "m", "concurrency": 1}},
        {"export": {}}]}))
    cmd = [sys.executable, "-m", "curate.cli", "run", str(path), "--run-dir", str(tmp_path / "run")]
    first = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        for line in first.stderr:
            if "[synthesize] running" in line:
                break
        second = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
        first_err = first.stderr.read()
        assert first.wait(timeout=300) == 0, first_err[-2000:]
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGKILL)
            first.wait()
    assert second.returncode == 2 and f"PID {first.pid}" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    assert (tmp_path / "run" / "export" / "README.md").is_file()


# -- 4. each output has its own quarantine file ------------------------------------------------------------

def test_quarantine_files_follow_the_full_output_name(tmp_path):
    for version, bad in (("v1", "first"), ("v2", "second")):
        src = tmp_path / f"{version}.jsonl"
        src.write_text(f'{{"prompt": "fine {version}"}}\n{{broken {bad}\n')
        result = cli("collect", "--in", str(src), "--out", str(tmp_path / f"a.{version}.parquet"), "--name", "s",
                     "--license", "MIT")
        assert result.exit_code == 0, result.output
    first = (tmp_path / "a.v1.quarantine.jsonl").read_text()
    second = (tmp_path / "a.v2.quarantine.jsonl").read_text()
    assert "broken first" in first and "broken second" in second
    assert not (tmp_path / "a.quarantine.jsonl").exists()


# -- 9. a run name is a name -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../../x", "/tmp/curate-escape", "a/b", "..", ".hidden", "-rf"])
def test_run_name_that_is_a_path_is_refused(tmp_path, monkeypatch, name):
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    path = collect_pipeline(tmp_path)
    config = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**config, "name": name}))
    with pytest.raises(ConfigError, match="run name"):
        run_pipeline(path, log=lambda m: None)
    assert not (tmp_path / "x").exists() and not Path("/tmp/curate-escape").exists()
    assert not (work / "runs").exists()


def test_run_locked_is_a_config_error_with_one_line():
    assert issubclass(RunLocked, ConfigError)
