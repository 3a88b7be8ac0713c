"""The balance stage: pick rows to meet the quotas, mark the rest ``not_selected``, assign splits."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

from curate import records
from curate.store import SHORTFALL
from curate.balance import report
from curate.balance.options import BalanceOptions
from curate.balance.select import Picker
from curate.balance.splits import assign_splits
from curate.balance.targets import compute_targets
from curate.kinds import dimension_expr, kind_expr, template_expr
from curate.records import ANSWERED, ANSWERED_FACT, INELIGIBLE, NOT_SELECTED
from curate.stage import StageContext

READS = ("id", "lang", "categories", "prompt_harmful", "response_kind", "response", "label_origin", "dup_cluster",
         "drop_reason", "role", "prompt_template", "answer_template", "answer_judge_score")
STRATUM = ("_kind", "_dim", "lang")  # a quota's key (kind, dimension, language), as columns


def harm_dimensions(ctx: StageContext) -> list[str]:
    """The taxonomy's harm dimension ids, so a dimension with no rows at all still shows its shortfall."""
    from curate.taxonomy import Taxonomy

    return list(Taxonomy.load(ctx.taxonomy_path).harm_ids)


def pending_mode(df: pl.DataFrame, opts: BalanceOptions) -> str:
    """``keep`` or ``exclude``; ``auto`` keeps pending rows when no kept row has an answer yet (a prompt set
    before synthesis: the quotas then pick which prompts to synthesize). ``df`` has ``answered``."""
    if opts.pending != "auto":
        return opts.pending
    return "exclude" if records.kept(df)[ANSWERED].any() else "keep"


def eligibility(df: pl.DataFrame, pending: str) -> pl.DataFrame:
    """The kept rows with what balance needs, as columns: ``_row`` (the row's position in ``df``), ``_kind``,
    ``_dim``, ``_cluster``, ``_template``, ``_human``, ``_score`` and ``_reason``, the drop reason (a key of
    ``records.INELIGIBLE``: rows that cannot enter the mix get their own reason, so the funnel tells them from rows
    the quotas left out). ``df`` has ``answered`` (``records.ANSWERED_FACT``) in place of ``response``."""
    kind = pl.col("_kind")
    no_cluster = pl.col("dup_cluster").is_null() | (pl.col("dup_cluster") == "")
    rows = df.select(*(c for c in READS if c != "response"), ANSWERED).with_row_index("_row").filter(
        pl.col("drop_reason").is_null())
    return rows.with_columns(kind_expr().alias("_kind")).with_columns(
        pl.when(kind.is_null()).then(pl.lit("unlabelled"))
          .when(pl.col("response_kind") == "harmful").then(pl.lit("harmful_response"))
          .when(~pl.col(ANSWERED) & pl.lit(pending == "exclude")).then(pl.lit("pending_synthesis"))
          .otherwise(pl.lit(None, dtype=pl.Utf8)).alias("_reason"),
        dimension_expr(kind).alias("_dim"),
        pl.when(no_cluster).then(pl.col("id")).otherwise(pl.col("dup_cluster")).alias("_cluster"),
        template_expr().alias("_template"),
        pl.col("answer_judge_score").alias("_score"),
        (pl.col("label_origin") == "human").fill_null(False).alias("_human")).select(
        "_row", "id", *STRATUM, "_cluster", "_template", "_human", "_score", "_reason")


def _by_row(height: int, rows: pl.Series, values: pl.Series | list) -> pl.Series:
    """A text column of ``height`` rows, ``values`` at positions ``rows``, null elsewhere."""
    return pl.repeat(None, height, dtype=pl.Utf8, eager=True).scatter(rows, values)


def run(df: pl.DataFrame, opts: BalanceOptions, ctx: StageContext) -> pl.DataFrame:
    facts = df.select(pl.exclude("response")).with_columns(ctx.derived(df, [ANSWERED_FACT]))
    pending = pending_mode(facts, opts)
    if opts.pending == "auto" and pending == "keep":
        ctx.log("[balance] no kept row has an answer yet: selecting prompts for synthesis by the quotas "
                "(pending: keep)")
    rows = eligibility(facts, pending)
    del facts
    ineligible_rows = rows.filter(pl.col("_reason").is_not_null()).select("_row", "_reason")
    ineligible: Counter[str] = Counter(dict(ineligible_rows["_reason"].value_counts().iter_rows()))
    picker = Picker(rows.filter(pl.col("_reason").is_null()), list(STRATUM), opts.seed)
    del rows

    available = {s: n for s, (_, n) in picker.slices.items()}
    targets = compute_targets(available, opts, harm_dimensions(ctx))
    chosen: list[np.ndarray] = []
    table = []
    for stratum in sorted(targets):
        picked = picker.pick(stratum, targets[stratum])
        chosen.append(picked)
        kind, dim, lang = stratum
        table.append({"kind": kind, "dimension": dim, "lang": lang, "available": available.get(stratum, 0),
                      "target": targets[stratum], "achieved": len(picked),
                      "shortfall": targets[stratum] - len(picked)})
    at = pl.Series(np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64))
    selected = picker.rows.select("_row", "id", "_cluster", "_dim", "lang")[at]
    split = assign_splits(((rid, cluster, (dim, lang)) for _, rid, cluster, dim, lang in selected.iter_rows()),
                          opts.test_fraction, opts.seed)

    is_selected = np.zeros(df.height, dtype=bool)
    is_selected[selected["_row"].to_numpy()] = True
    out = df.with_columns(
        pl.coalesce("drop_reason", _by_row(df.height, ineligible_rows["_row"], ineligible_rows["_reason"]),
                    pl.when(~pl.Series(is_selected)).then(pl.lit(NOT_SELECTED))).alias("drop_reason"),
        _by_row(df.height, selected["_row"], [split[rid] for rid in selected["id"]]).alias("_split"))
    out = out.with_columns(pl.when(pl.col("drop_reason").is_null()).then(pl.col("_split"))
                             .otherwise(pl.col("split")).alias("split")).drop("_split")

    _report(table, ineligible, split, opts, ctx)
    ctx.stats["pending"] = pending
    return out


def _report(table: list[dict], ineligible: Counter, split: dict[str, str], opts: BalanceOptions,
            ctx: StageContext) -> None:
    shortfalls = [r for r in table if r["shortfall"] > 0]
    ctx.stats.update({
        "targets": table,
        "target_total": sum(r["target"] for r in table),
        "selected": sum(r["achieved"] for r in table),
        "shortfall_total": sum(r["shortfall"] for r in shortfalls),
        "shortfalls": shortfalls,
        "ineligible": dict(ineligible),
        "splits": dict(Counter(split.values())),
        "seed": opts.seed,
    })
    ctx.log(report.render_table(table))
    for line in report.shortfall_lines(table):
        ctx.log(line)
    for reason, n in sorted(ineligible.items()):
        ctx.log(f"not eligible: {n:,} rows, drop_reason {reason}: {INELIGIBLE[reason]}")
    path: Path | None = opts.shortfall_csv or (ctx.run_dir / SHORTFALL if ctx.run_dir else None)
    if path is not None:
        report.write_shortfall_csv(table, path)
        ctx.stats["shortfall_csv"] = str(path)
