"""One summary of a run, computed once with polars, for every view of it: the run report and the dataset card.

``summarize(df, manifests)`` takes the run's final table and its stage manifests (``RunStore.manifests()``);
the exported part (splits, dimensions, kinds, sources, licences, how the answers were written, review
coverage) is what export writes: kept rows with a response.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from curate import funnel as funnel_mod
from curate import records
from curate.kinds import GENERAL_DIMENSION, kind_expr
from curate.licenses import LicenseSummary, summarize as summarize_licenses
from curate.records import has_answer
from curate.taxonomy import SAFE

SPLIT_ORDER = ("train", "test")
UNLABELLED = "unlabelled"  # the kind of an exported row balance could not place (prompt_harmful unknown)


@dataclass(frozen=True)
class StageFigures:
    """One stage's line of the funnel, from its manifest."""

    stage: str
    rows_in: int | None
    rows_out: int | None
    new_drops: dict[str, int]
    quarantined: int
    seconds: float


@dataclass
class DatasetSummary:
    """The exported rows: what the card describes."""

    splits: dict[str, int]
    dimensions: dict[str, dict[str, int]]  # dimension id -> lang -> rows (a row counts in each of its dimensions)
    languages: dict[str, int]
    kinds: dict[str, int]
    sources: dict[str, dict[str, Any]]  # source -> {"exported", "collected", "license", "license_text"}
    licenses: LicenseSummary
    synthesis: dict[str, Any]
    review: dict[str, Any]
    prompt_set: bool = False  # the export is prompts awaiting synthesis, not answered training rows

    @property
    def total(self) -> int:
        return sum(self.splits.values())


@dataclass
class RunSummary:
    funnel: funnel_mod.Funnel
    stages: list[StageFigures]
    stage_stats: dict[str, dict[str, Any]]  # stage name -> the "stats" of its manifest
    quarantine_reasons: dict[str, int]
    label_origins: dict[str, int]  # over every row of the final table ("none" = null)
    synthesis_statuses: dict[str, int]  # synthesis_status over every row of the final table
    duplicates: int
    duplicate_clusters: int
    dataset: DatasetSummary | None = None  # None when no row is exportable

    def stats(self, stage: str) -> dict[str, Any] | None:
        """The stage's manifest stats; None when the stage did not run."""
        return self.stage_stats.get(stage)

    @property
    def balance(self) -> dict[str, Any]:
        return self.stage_stats.get("balance") or {}


def exportable(df: pl.DataFrame, prompt_set: bool = False) -> pl.DataFrame:
    """Rows that go into the dataset: no drop_reason and a response (pending synthesis stays out); in a prompt
    set every row no stage rejected."""
    return records.kept(df) if prompt_set else records.kept(df).filter(has_answer(df))


def is_prompt_set(df: pl.DataFrame, content: str) -> bool:
    """Export a prompt set: asked for (``prompts``), or ``auto`` and no kept row has an answer yet."""
    return content == "prompts" or (content == "auto" and exportable(df).height == 0)


def dataset_rows(df: pl.DataFrame, prompt_set: bool = False) -> pl.DataFrame:
    """The exported rows with their training-mix ``kind`` (``curate.kinds``: the one place that says what a row
    is) and ``synthesized`` as columns; no split = train."""
    return exportable(df, prompt_set).with_columns(
        kind_expr().fill_null(UNLABELLED).alias("kind"),
        (pl.col("answer_origin") == "synthesized").fill_null(False).alias("synthesized"),
        pl.col("split").fill_null("train"))


def _counts(df: pl.DataFrame, column: str, *, null_as: str | None = None) -> dict[str, int]:
    values = pl.col(column) if null_as is None else pl.col(column).fill_null(null_as)
    counts = df.select(values).group_by(column).len().drop_nulls(column).sort(column)
    return dict(counts.iter_rows())


# What summarize needs of a run's every row (``exported`` rows are read whole): a caller holding millions of rows
# keeps only these (export's card: 10M rows' other columns held 5 GB), and of the answers whether there is one.
SUMMARY_FACTS = [*map(pl.col, ("drop_reason", "dup_cluster", "is_duplicate", "label_origin", "synthesis_status",
                               "source", "source_license")), records.ANSWERED_FACT]


def summarize(df: pl.DataFrame, manifests: list[dict[str, Any]], *,
              exported: pl.DataFrame | None = None, prompt_set: bool = False) -> RunSummary:
    """The run at a glance. ``exported``: ``dataset_rows(df, prompt_set)`` when the caller already has it."""
    exported = dataset_rows(df, prompt_set) if exported is None else exported
    collected = manifests[0].get("rows_out") if manifests else None
    quarantined = sum(int(m.get("quarantined") or 0) for m in manifests)
    reasons: dict[str, int] = {}
    for m in manifests:
        for reason, n in (m.get("quarantine_reasons") or {}).items():
            reasons[reason] = reasons.get(reason, 0) + n
    dup = df.filter(pl.col("dup_cluster").is_not_null())
    return RunSummary(
        funnel=funnel_mod.compute(df, quarantined=quarantined, collected=collected),
        stages=[StageFigures(m.get("stage"), m.get("rows_in"), m.get("rows_out"), m.get("new_drops") or {},
                             int(m.get("quarantined") or 0), float(m.get("seconds") or 0)) for m in manifests],
        stage_stats={m["stage"]: m.get("stats") or {} for m in reversed(manifests) if m.get("stage")},
        quarantine_reasons=reasons,
        label_origins=_counts(df, "label_origin", null_as="none"),
        synthesis_statuses=_counts(df, "synthesis_status"),
        duplicates=int(df["is_duplicate"].sum() or 0), duplicate_clusters=dup["dup_cluster"].n_unique(),
        dataset=_dataset(df, exported, manifests, prompt_set) if exported.height else None)


def _split_key(split: str) -> tuple:
    return (split not in SPLIT_ORDER, SPLIT_ORDER.index(split) if split in SPLIT_ORDER else 0, split)


def _dataset(df: pl.DataFrame, rows: pl.DataFrame, manifests: list[dict[str, Any]],
             prompt_set: bool = False) -> DatasetSummary:
    splits = _counts(rows, "split")
    # A row counts once in each of its dimensions; a row with none counts in its stratum dimension (S00/general).
    fallback = pl.when(pl.col("kind") == "general").then(pl.lit(GENERAL_DIMENSION)).otherwise(pl.lit(SAFE))
    dims = rows.select(pl.when(pl.col("categories").list.len() > 0).then(pl.col("categories"))
                       .otherwise(pl.concat_list(fallback)).alias("dim"), "lang").explode("dim")
    dimensions: dict[str, dict[str, int]] = {}
    for dim, lang, n in dims.group_by("dim", "lang").len().sort("dim", "lang").iter_rows():
        dimensions.setdefault(dim, {})[lang] = n
    # The card's licence binds what is exported; the sources table also lists sources that exported nothing.
    licenses = summarize_licenses(set(rows.select("source", "source_license").unique().iter_rows()))
    pairs = df.select("source", "source_license").unique().sort("source", "source_license", nulls_last=True).rows()
    every_source = summarize_licenses(pairs)
    first_license: dict[str, str | None] = {}
    for source, text in pairs:
        first_license.setdefault(source, text)
    exported_by_source = _counts(rows, "source")
    sources = {s: {"exported": exported_by_source.get(s, 0), "collected": n, "license": every_source.by_source[s],
                   "license_text": first_license.get(s) or "(none given)"} for s, n in _counts(df, "source").items()}
    return DatasetSummary(
        splits=dict(sorted(splits.items(), key=lambda kv: _split_key(kv[0]))),
        dimensions=dimensions, languages=_counts(rows, "lang"), kinds=_counts(rows, "kind"),
        sources=sources, licenses=licenses,
        synthesis=_synthesis(df, rows, manifests), review=_review(rows, manifests), prompt_set=prompt_set)


def _most_common(series: pl.Series) -> list[tuple[str, int]]:
    """(value, count) by count descending, ties in first-seen order (as ``Counter.most_common``)."""
    counts = series.drop_nulls().to_frame("v").group_by("v", maintain_order=True).len() \
        .sort("len", descending=True, maintain_order=True)
    return [(str(v), int(n)) for v, n in counts.iter_rows()]


def _synthesis(df: pl.DataFrame, rows: pl.DataFrame, manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """Models, templates and judge scores of the exported answers; the synthesis filters and what they dropped."""
    synthesized = rows.filter(pl.col("synthesized"))
    stats = next((m.get("stats") or {} for m in manifests if m.get("stage") == "synthesize"), {})
    shas = stats.get("templates") or {}
    sha = pl.col("answer_template").replace_strict(shas, default="?", return_dtype=pl.Utf8)
    templates = synthesized.filter(pl.col("answer_template").is_not_null() & (pl.col("answer_template") != "")) \
        .select(pl.format("{} (sha {})", "answer_template", sha).alias("t"))["t"]
    models = synthesized.filter(pl.col("answer_model") != "")["answer_model"]
    scores = synthesized["answer_judge_score"].drop_nulls()
    return {
        "synthesized": synthesized.height, "from_source": rows.height - synthesized.height,
        "models": _most_common(models), "templates": _most_common(templates),
        "judge_score_mean": round(float(scores.mean()), 2) if scores.len() else None, "judged": scores.len(),
        "filters": {reason: n for reason, n in sorted(funnel_mod.drop_counts(df).items()) if reason.startswith("synth")},
        "sample": stats.get("sample") or {},
    }


def _review(rows: pl.DataFrame, manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """How many exported rows a person reviewed, and how well reviewers agreed (the review stage's figures)."""
    reviewed = rows.filter((pl.col("label_origin") == "human") | pl.col("reviewed"))
    stats = next((m.get("stats") or {} for m in manifests if m.get("stage") == "review"), {})
    return {
        "reviewed": reviewed.height, "total": rows.height,
        "stage_agreement": {k: v for k, v in stats.items() if any(w in k for w in ("agree", "kappa", "alpha"))},
    }
