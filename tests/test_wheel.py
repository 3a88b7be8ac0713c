"""The package stands alone: the built wheel carries the taxonomy and its mappings, the review label config and
guidelines, the templates and the default model, and works installed in a fresh virtual environment, run from a
folder outside the repository (offline: --no-deps, --no-index; the dependencies come from this environment)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "LICENSE", "NOTICE", "curate", "taxonomy", "annotations"]
RUNTIME_FILES = ["curate/bundled/taxonomy/default/dimensions.yaml", "curate/bundled/taxonomy/default/mappings/harmbench.yaml",
                 "curate/bundled/annotations/label_config.xml", "curate/bundled/annotations/GUIDELINES.en.md",
                 "curate/bundled/annotations/GUIDELINES.zh.md", "curate/templates/synthesize/en/refusal.v1.txt",
                 "curate/models/default/prompt.bin", "curate/models/default/model.json", "curate/data/kind_seeds.yaml"]


def _run(args: list, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel built from a copy of the sources (the checkout stays untouched)."""
    pytest.importorskip("setuptools", minversion="77", reason="building the wheel needs setuptools >= 77 (test extra)")
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", src, "-w", root / "dist"], root)
    wheel, = (root / "dist").glob("curate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not [f for f in RUNTIME_FILES if f not in names]
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], root)
    site = Path(_run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     root).stdout.strip())
    # the dependencies: this environment's site-packages, after the fresh one (its curate is not importable
    # from there: the editable install's hook is a .pth file that a plain path line does not run)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps", "--no-index",
          wheel], root)
    return venv


def test_wheel_runs_collect_classify_and_label_config_outside_the_repo(installed, tmp_path):
    work = tmp_path / "elsewhere"
    shutil.copytree(REPO / "pipelines" / "data" / "quickstart" / "harmbench", work / "harmbench")
    curate = installed / "bin" / "curate"
    where = _run([installed / "bin" / "python", "-c", "import curate; print(curate.__file__)"], work).stdout
    assert where.startswith(str(installed)), where

    _run([curate, "collect", "--preset", "harmbench", "--in", "harmbench", "--out", "records.jsonl"], work)
    rows = [json.loads(line) for line in (work / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) > 50 and sum(bool(r["categories"]) for r in rows) > len(rows) // 2  # the preset's mapping

    _run([curate, "classify", "--in", "records.jsonl", "--out", "classified.jsonl"], work)
    classified = [json.loads(line) for line in (work / "classified.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(classified) == len(rows) and all(r["category_scores"] for r in classified)

    _run([curate, "review", "label-config", "--out", "label_config.xml"], work)
    assert (work / "label_config.xml").read_text(encoding="utf-8") == \
        (REPO / "annotations" / "label_config.xml").read_text(encoding="utf-8")
    assert not (work / "runs").exists() and sorted(p.name for p in work.iterdir() if p.is_file()) == \
        ["classified.jsonl", "classified.stats.json", "label_config.xml", "records.jsonl", "records.stats.json"]
