"""The contract every stage run is held to, in one place: the columns a stage declares exist, its output is
schema-valid, every input row is still there (a stage sets ``drop_reason``, it never deletes), and it changes
only the columns it declares in ``Stage.writes``. The runner checks it however it feeds the stage (a whole
frame, one shard at a time, or only the declared columns: ``curate.streaming``)."""
from __future__ import annotations

from typing import Any

import polars as pl

from curate import records
from curate.errors import RunFailed
from curate.stage import Stage, StageContext


class StageFailed(RunFailed):
    """A stage broke the contract (lost rows, broke the schema) or raised; the run stops, earlier outputs stay."""


def run_stage(stage: Stage, df: pl.DataFrame, options: Any, ctx: StageContext, *,
              columns: list[str] | None = None) -> pl.DataFrame:
    """Run one stage and check its contract: the columns it declares, schema-valid output, every input id still
    present, and only its declared columns changed (``columns``: the schema columns ``df`` has, when the stage
    is given only some)."""
    check_declared(stage)
    if not stage.creates_rows:
        records.validate(df, where=f"input of {stage.name}", columns=columns)
    out = records.conform(ctx.engine.run_stage(stage, df, options, ctx), columns)
    records.validate(out, where=f"output of {stage.name}", columns=columns)
    if not stage.creates_rows:
        check_rows(stage, df, out)
        check_writes(stage, df, out)
    return out


def check_rows(stage: Stage, before: pl.DataFrame, after: pl.DataFrame) -> None:
    """Every input row is still there, and no row was added."""
    if after.height == before.height and before["id"].equals(after["id"]):
        return  # the usual case, checked without a hash table of every id
    missing = before.join(after.select("id"), on="id", how="anti")
    if missing.height:
        raise StageFailed(f"stage {stage.name} lost {missing.height} rows (e.g. id {missing['id'][0]}); "
                          "stages must keep every row and set drop_reason instead")
    if after.height != before.height:
        raise StageFailed(f"stage {stage.name} returned {after.height} rows for {before.height}: a stage keeps the "
                          "rows it is given and adds none")


def check_declared(stage: Stage) -> None:
    """A stage's ``reads`` and ``writes`` name record columns (a typo, or a fact that is not a column yet, fails)."""
    for what, columns in (("reads", stage.reads), ("writes", stage.writes)):
        unknown = [c for c in columns if c not in records.SCHEMA]
        if unknown:
            which = "is not a record column" if len(unknown) == 1 else "are not record columns"
            raise StageFailed(f"stage {stage.name} declares {what} {', '.join(map(repr, unknown))}, which {which} "
                              "(see curate/records.py)")


def check_writes(stage: Stage, before: pl.DataFrame, after: pl.DataFrame) -> None:
    """A stage changes only the columns its ``writes`` declares (``meta`` too: a stage that appends its lineage
    declares it), of the columns it was given."""
    if not before["id"].equals(after["id"]):
        before, after = before.sort("id"), after.sort("id")
    changed = [c for c in before.columns if c not in stage.writes and not before[c].equals(after[c])]
    if changed:
        raise StageFailed(f"stage {stage.name} changed {', '.join(changed)}, which it does not declare in "
                          f"Stage.writes ({', '.join(stage.writes) or 'nothing'})")
