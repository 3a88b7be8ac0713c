"""Kill `curate run` with SIGKILL inside a chosen stage, resume it, and compare with an uninterrupted run.

For every stage of the pipeline and every seed: start a fresh run, wait until the stage announces itself
("[<stage>] running"), sleep a seeded random part of that stage's reference duration, SIGKILL the whole
process group, then run again to the end. The resumed output must equal the reference output.
Used by tests/test_crash_resume.py (a few seeds) and benchmarks/chaos.py (more seeds, printed figures).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from curate.store import MANIFEST, TMP_PREFIX, read_shards


@dataclass
class CrashFigures:
    kills: int = 0
    resumed_equal: int = 0
    resumes: int = 0
    rows_lost: int = 0
    rows_duplicated: int = 0
    stray_temp_outputs: int = 0
    inconsistent_manifests: int = 0
    per_stage: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _command(pipeline: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "curate.cli", "run", str(pipeline), "--run-dir", str(run_dir)]


def _stage_dirs(run_dir: Path) -> list[Path]:
    return sorted(d for d in run_dir.iterdir() if d.is_dir() and d.name[:2].isdigit())


def final_table(run_dir: Path) -> pl.DataFrame:
    return read_shards(_stage_dirs(run_dir)[-1]).sort("id")


def check_run_dir(run_dir: Path, figures: CrashFigures) -> None:
    """No temp folder may be left where output is read, and each manifest must match its shards."""
    for stage in _stage_dirs(run_dir):
        manifest = json.loads((stage / MANIFEST).read_text())
        if read_shards(stage).height != manifest["rows_out"]:
            figures.inconsistent_manifests += 1
    figures.stray_temp_outputs += sum(1 for _ in run_dir.glob(f"{TMP_PREFIX}*"))


def compare(reference: pl.DataFrame, resumed: pl.DataFrame, figures: CrashFigures, label: str) -> None:
    ref_ids, got_ids = set(reference["id"]), resumed["id"].to_list()
    figures.rows_lost += len(ref_ids - set(got_ids))
    figures.rows_duplicated += len(got_ids) - len(set(got_ids))
    if reference.equals(resumed):
        figures.resumed_equal += 1
    else:
        diff = [c for c in reference.columns if c in resumed.columns and reference.height == resumed.height
                and not reference[c].equals(resumed[c])]
        figures.notes.append(f"{label}: resumed output differs from the uninterrupted run in {diff or 'rows'}")


def _kill_inside(pipeline: Path, run_dir: Path, stage: str, delay: float, env: dict[str, str]) -> bool:
    """Start a run, SIGKILL it ``delay`` seconds after ``stage`` starts. False if the run ended first."""
    proc = subprocess.Popen(_command(pipeline, run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True, text=True)
    started = threading.Event()

    def watch() -> None:
        for line in proc.stderr:
            if line.startswith(f"[{stage}] running"):
                started.set()
        started.set()  # the run ended without reaching the stage

    threading.Thread(target=watch, daemon=True).start()
    started.wait(timeout=300)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return killed


def crash_and_resume(pipeline: Path, workdir: Path, seeds: list[int], env: dict[str, str] | None = None,
                     stages: list[str] | None = None) -> CrashFigures:
    env = {**os.environ, **(env or {})}
    figures = CrashFigures()
    reference_dir = workdir / "reference"
    proc = subprocess.run(_command(pipeline, reference_dir), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed: {proc.stderr[-2000:]}")
    reference = final_table(reference_dir)
    durations = {json.loads((d / MANIFEST).read_text())["stage"]: json.loads((d / MANIFEST).read_text())["seconds"]
                 for d in _stage_dirs(reference_dir)}
    for stage in stages or list(durations):
        for seed in seeds:
            rng = random.Random(f"{stage}:{seed}")
            run_dir = workdir / f"{stage}-{seed}"
            if _kill_inside(pipeline, run_dir, stage, rng.uniform(0, max(durations[stage], 0.05) * 1.1), env):
                figures.kills += 1
                figures.per_stage[stage] = figures.per_stage.get(stage, 0) + 1
            resumed = subprocess.run(_command(pipeline, run_dir), capture_output=True, text=True, env=env)
            figures.resumes += 1
            if resumed.returncode != 0:
                figures.notes.append(f"{stage} seed {seed}: resume failed: {resumed.stderr[-500:]}")
                figures.rows_lost += reference.height
                continue
            check_run_dir(run_dir, figures)
            compare(reference, final_table(run_dir), figures, f"{stage} seed {seed}")
    return figures


def small_pipeline(path: Path, sources: list[dict], stages: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"name": "chaos", "report": False, "stages": [{"collect": {"sources": sources}},
                                                                                  *stages]}))
    return path
