"""A full or read-only disk gives one clear error and leaves earlier stage outputs intact."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from curate.store import read_shards

QUICKSTART = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "quickstart"


def can_mount() -> bool:
    probe = Path("/tmp/curate-mount-probe")
    probe.mkdir(exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", str(probe)], check=True)
    return ok


needs_mount = pytest.mark.skipif(not can_mount(), reason="needs permission to mount a small tmpfs (root in CI)")


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def pipeline(tmp_path: Path, run_dir: Path) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "disk", "report": False, "run_dir": str(run_dir), "stages": [
        {"collect": {"sources": [{"preset": "xsafety", "path": str(QUICKSTART / "xsafety")}]}}, {"dedup": {}}]}))
    return path


def curate_run(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate.cli", "run", str(path), *args], capture_output=True, text=True)


@needs_mount
def test_read_only_run_dir_is_a_clear_error_and_outputs_stay(tmp_path, small_disk):
    run_dir = small_disk / "run"
    path = pipeline(tmp_path, run_dir)
    assert curate_run(path).returncode == 0
    before = read_shards(run_dir / "01-collect")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    proc = curate_run(path, "--force")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "Read-only file system" in proc.stderr
    assert read_shards(run_dir / "01-collect").equals(before)


@needs_mount
def test_full_disk_is_a_clear_error_and_earlier_stage_outputs_stay(tmp_path, small_disk):
    run_dir = small_disk / "run"
    path = pipeline(tmp_path, run_dir)
    assert curate_run(path, "--to", "collect").returncode == 0
    before = read_shards(run_dir / "01-collect")
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k", "count=100000"], capture_output=True)
    proc = curate_run(path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "No space left on device" in proc.stderr
    assert read_shards(run_dir / "01-collect").equals(before)
    assert not (run_dir / "02-dedup").exists()
    filler.unlink()
    assert curate_run(path).returncode == 0  # room again: the run resumes and finishes
    assert (run_dir / "02-dedup" / "_manifest.json").exists()
