"""The balance stage: pick rows to meet the quotas, mark the rest ``not_selected``, assign splits."""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import polars as pl

from curate import records
from curate.store import SHORTFALL
from curate.balance import report
from curate.balance.options import BalanceOptions
from curate.balance.select import Candidate, pick
from curate.balance.splits import assign_splits
from curate.balance.targets import Stratum, compute_targets
from curate.kinds import dimension_expr, kind_expr, template_expr
from curate.records import HAS_RESPONSE, INELIGIBLE, NOT_SELECTED
from curate.stage import StageContext

READS = ("id", "lang", "categories", "prompt_harmful", "response_kind", "response", "label_origin", "dup_cluster",
         "drop_reason", "role", "prompt_template", "answer_template", "answer_judge_score")


def harm_dimensions(ctx: StageContext) -> list[str]:
    """The taxonomy's harm dimension ids, so a dimension with no rows at all still shows its shortfall."""
    from curate.taxonomy import Taxonomy

    return list(Taxonomy.load(ctx.taxonomy_path).harm_ids)


def pending_mode(df: pl.DataFrame, opts: BalanceOptions) -> str:
    """``keep`` or ``exclude``; ``auto`` keeps pending rows when no kept row has an answer yet (a prompt set
    before synthesis: the quotas then pick which prompts to synthesize)."""
    if opts.pending != "auto":
        return opts.pending
    answered = records.kept(df).filter(HAS_RESPONSE).height
    return "exclude" if answered else "keep"


def eligibility(df: pl.DataFrame, pending: str) -> pl.DataFrame:
    """The kept rows with what balance needs, as columns: ``_kind``, ``_dim``, ``_cluster``, ``_template``,
    ``_human``, ``_score`` and ``_reason``, the drop reason (a key of ``records.INELIGIBLE``: rows that cannot enter
    the mix get their own reason, so the funnel tells them from rows the quotas left out)."""
    kind = pl.col("_kind")
    no_cluster = pl.col("dup_cluster").is_null() | (pl.col("dup_cluster") == "")
    return records.kept(df).select(READS).with_columns(kind_expr().alias("_kind")).with_columns(
        pl.when(kind.is_null()).then(pl.lit("unlabelled"))
          .when(pl.col("response_kind") == "harmful").then(pl.lit("harmful_response"))
          .when(~HAS_RESPONSE & pl.lit(pending == "exclude")).then(pl.lit("pending_synthesis"))
          .otherwise(pl.lit(None, dtype=pl.Utf8)).alias("_reason"),
        dimension_expr(kind).alias("_dim"),
        pl.when(no_cluster).then(pl.col("id")).otherwise(pl.col("dup_cluster")).alias("_cluster"),
        template_expr().alias("_template"),
        pl.col("answer_judge_score").alias("_score"),
        (pl.col("label_origin") == "human").fill_null(False).alias("_human"))


def run(df: pl.DataFrame, opts: BalanceOptions, ctx: StageContext) -> pl.DataFrame:
    pending = pending_mode(df, opts)
    if opts.pending == "auto" and pending == "keep":
        ctx.log("[balance] no kept row has an answer yet: selecting prompts for synthesis by the quotas "
                "(pending: keep)")
    rows = eligibility(df, pending)
    ineligible: Counter[str] = Counter(dict(rows["_reason"].drop_nulls().value_counts().iter_rows()))
    ineligible_ids = {reason: rows.filter(pl.col("_reason") == reason)["id"] for reason in ineligible}
    eligible = rows.filter(pl.col("_reason").is_null())
    candidates: dict[Stratum, list[Candidate]] = defaultdict(list)
    for rid, human, score, cluster, template, kind, dim, lang in eligible.select(
            "id", "_human", "_score", "_cluster", "_template", "_kind", "_dim", "lang").iter_rows():
        candidates[kind, dim, lang].append(Candidate(id=rid, human=human, score=score, cluster=cluster,
                                                     template=template))

    available = {s: len(c) for s, c in candidates.items()}
    targets = compute_targets(available, opts, harm_dimensions(ctx))
    selected: list[str] = []
    used_clusters: set[str] = set()
    used_templates: set[str] = set()
    table = []
    for stratum in sorted(targets):
        chosen = pick(candidates.get(stratum, []), targets[stratum], opts.seed, used_clusters, used_templates)
        selected.extend(chosen)
        kind, dim, lang = stratum
        table.append({"kind": kind, "dimension": dim, "lang": lang, "available": available.get(stratum, 0),
                      "target": targets[stratum], "achieved": len(chosen),
                      "shortfall": targets[stratum] - len(chosen)})

    chosen_rows = eligible.filter(pl.col("id").is_in(selected)).select("id", "_cluster", "_dim", "lang")
    placed = {rid: (cluster, (dim, lang)) for rid, cluster, dim, lang in chosen_rows.iter_rows()}
    split = assign_splits(((rid, *placed[rid]) for rid in selected), opts.test_fraction, opts.seed)
    live = pl.col("drop_reason").is_null()
    is_selected = pl.col("id").is_in(selected)
    split_map = pl.DataFrame({"id": list(split), "_split": list(split.values())}, schema={"id": pl.Utf8, "_split": pl.Utf8})
    out = df
    for reason, ids in ineligible_ids.items():
        out = records.mark_dropped(out, pl.col("id").is_in(ids.to_list()), reason)
    out = records.mark_dropped(out, ~is_selected, NOT_SELECTED)
    out = out.join(split_map, on="id", how="left").with_columns(
        pl.when(live).then(pl.col("_split")).otherwise(pl.col("split")).alias("split")).drop("_split")
    out = out.select(df.columns)  # the columns it was given (the runner may give only those it declares)

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
