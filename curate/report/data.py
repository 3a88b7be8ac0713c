"""Load what a finished run directory holds: stage manifests in order, the final table, the pre-balance table."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from curate.store import MANIFEST, read_shards


@dataclass
class RunData:
    run_dir: Path
    manifests: list[dict[str, Any]]
    final: pl.DataFrame
    before_balance: pl.DataFrame | None = None
    quarantine: dict[str, int] = field(default_factory=dict)

    def stage(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.manifests if m.get("stage") == name), None)


def load_run(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    stage_dirs = sorted(d for d in run_dir.iterdir() if d.is_dir() and d.name[:2].isdigit() and (d / MANIFEST).exists())
    if not stage_dirs:
        raise FileNotFoundError(f"{run_dir}: no finished stage (no NN-<stage>/{MANIFEST})")
    manifests = [json.loads((d / MANIFEST).read_text(encoding="utf-8")) for d in stage_dirs]
    final = read_shards(stage_dirs[-1])
    before = None
    names = [m["stage"] for m in manifests]
    if "balance" in names and names.index("balance") > 0:
        before = read_shards(stage_dirs[names.index("balance") - 1])
    quarantine: dict[str, int] = {}
    for m in manifests:
        for reason, n in (m.get("quarantine_reasons") or {}).items():
            quarantine[reason] = quarantine.get(reason, 0) + n
    return RunData(run_dir, manifests, final, before, quarantine)
