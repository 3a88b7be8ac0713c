"""Load what a finished run directory holds: the final table, the pre-balance table and the run's summary."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from curate.eval import results as eval_results
from curate.store import MANIFEST, RunStore, read_shards
from curate.summary import RunSummary, summarize


@dataclass
class RunData:
    run_dir: Path
    manifests: list[dict[str, Any]]
    final: pl.DataFrame
    summary: RunSummary
    before_balance: pl.DataFrame | None = None
    evals: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, eval summary.json)

    def stage(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.manifests if m.get("stage") == name), None)


def load_run(run_dir: Path) -> RunData:
    store = RunStore.existing(Path(run_dir))
    stages = store.finished_stages()
    if not stages:
        raise FileNotFoundError(f"{store.root}: no finished stage (no NN-<stage>/{MANIFEST})")
    manifests = [s.manifest for s in stages]
    final = read_shards(stages[-1].path)
    names = [m.get("stage") for m in manifests]
    before = None
    if "balance" in names and names.index("balance") > 0:
        before = read_shards(stages[names.index("balance") - 1].path)
    evals = [(folder.name, eval_results.load(folder)[0]) for folder in store.eval_results()]
    return RunData(store.root, manifests, final, summarize(final, manifests), before, evals)
