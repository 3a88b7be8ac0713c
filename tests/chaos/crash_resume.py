"""Kill `curate run` with SIGKILL at random moments, resume it, and compare with an uninterrupted run.

Used by tests/test_crash_resume.py (a few seeds) and benchmarks/chaos.py (many seeds, printed figures).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from curate.store import MANIFEST, read_shards


@dataclass
class CrashFigures:
    kills: int = 0
    kills_mid_stage: int = 0
    resumed_equal: int = 0
    rows_lost: int = 0
    rows_duplicated: int = 0
    stray_temp_outputs: int = 0
    inconsistent_manifests: int = 0
    notes: list[str] = field(default_factory=list)


def _run(pipeline: Path, run_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "curate.cli", "run", str(pipeline), "--run-dir", str(run_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)


def final_table(run_dir: Path) -> pl.DataFrame:
    stages = sorted(d for d in run_dir.iterdir() if d.is_dir() and d.name[:2].isdigit())
    return read_shards(stages[-1]).sort("id")


def check_run_dir(run_dir: Path, figures: CrashFigures) -> None:
    """No temp folder may sit where output is read, and each manifest must match its shards."""
    for stage in sorted(d for d in run_dir.iterdir() if d.is_dir() and d.name[:2].isdigit()):
        manifest = json.loads((stage / MANIFEST).read_text())
        if read_shards(stage).height != manifest["rows_out"]:
            figures.inconsistent_manifests += 1
    figures.stray_temp_outputs += sum(1 for p in run_dir.glob(".tmp-*"))


def compare(reference: pl.DataFrame, resumed: pl.DataFrame, figures: CrashFigures) -> None:
    ref_ids, got_ids = set(reference["id"]), resumed["id"].to_list()
    figures.rows_lost += len(ref_ids - set(got_ids))
    figures.rows_duplicated += len(got_ids) - len(set(got_ids))
    volatile = ["meta"]  # meta may hold timings; content columns must be identical
    if reference.drop(volatile).equals(resumed.drop(volatile)):
        figures.resumed_equal += 1
    else:
        figures.notes.append("resumed output differs from the uninterrupted run")


def crash_and_resume(pipeline: Path, workdir: Path, seeds: list[int], env: dict[str, str] | None = None,
                     kills_per_seed: int = 2) -> CrashFigures:
    env = {**os.environ, **(env or {})}
    figures = CrashFigures()
    reference_dir = workdir / "reference"
    started = time.monotonic()
    proc = _run(pipeline, reference_dir, env)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed: {err.decode()[-2000:]}")
    duration = time.monotonic() - started
    reference = final_table(reference_dir)
    for seed in seeds:
        rng = random.Random(seed)
        run_dir = workdir / f"seed-{seed}"
        for _ in range(kills_per_seed):
            proc = _run(pipeline, run_dir, env)
            time.sleep(rng.uniform(0.2, duration))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                figures.kills += 1
                partial = list(run_dir.glob(".tmp-*")) if run_dir.exists() else []
                figures.kills_mid_stage += bool(partial)
            proc.wait()
        proc = _run(pipeline, run_dir, env)
        _, err = proc.communicate()
        if proc.returncode != 0:
            figures.notes.append(f"seed {seed}: resume failed: {err.decode()[-500:]}")
            figures.rows_lost += reference.height
            continue
        check_run_dir(run_dir, figures)
        compare(reference, final_table(run_dir), figures)
    return figures


def small_pipeline(path: Path, sources: list[dict], stages: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"name": "chaos", "report": False, "stages": [{"collect": {"sources": sources}},
                                                                                  *stages]}))
    return path
