"""The figures a dataset card shows, computed from the frame (and the run's manifests when there is a run).

Every count in the card comes from here, so the card and the data cannot disagree.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

import polars as pl

from curate import funnel as funnel_mod
from curate import records
from curate.balance.kinds import judge_score, record_kind, row_dimension, was_synthesized
from curate.export.licenses import LicenseSummary, summarize
from curate.funnel import HAS_RESPONSE
from curate.store import MANIFEST

SPLIT_ORDER = ("train", "test")


@dataclass
class Summary:
    splits: dict[str, int]
    dimensions: dict[str, Counter]  # dimension id -> lang -> exported rows (a row counts in each of its dimensions)
    languages: Counter
    kinds: Counter
    sources: dict[str, dict[str, Any]]  # source -> {"exported", "collected", "license", "license_text"}
    licenses: LicenseSummary
    funnel: funnel_mod.Funnel
    stages: list[dict[str, Any]] = field(default_factory=list)  # per stage: name, rows in, new drops
    synthesis: dict[str, Any] = field(default_factory=dict)
    review: dict[str, Any] = field(default_factory=dict)
    balance: dict[str, Any] = field(default_factory=dict)

    @property
    def exported(self) -> int:
        return sum(self.splits.values())


def load_manifests(run_dir: Path | None) -> list[dict[str, Any]]:
    if run_dir is None or not Path(run_dir).is_dir():
        return []
    out = []
    for path in sorted(Path(run_dir).glob(f"[0-9][0-9]-*/{MANIFEST}")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue  # an unreadable manifest is an unfinished stage: not part of the funnel
    return out


def summarize_run(df: pl.DataFrame, rows: list[dict[str, Any]], kinds: list[str],
                  manifests: list[dict[str, Any]]) -> Summary:
    """``rows``/``kinds``: the exported records (schema dicts with parsed meta) and their kinds."""
    splits = Counter(r["split"] or "train" for r in rows)
    dims: dict[str, Counter] = defaultdict(Counter)
    for row, kind in zip(rows, kinds):
        for dim in row["categories"] or [row_dimension(row, kind)]:
            dims[dim][row["lang"]] += 1
    collected_by_source = Counter(df["source"].to_list())
    exported_by_source = Counter(r["source"] for r in rows)
    # The card's license binds what is exported; the sources table also lists sources that exported nothing.
    licenses = summarize({(r["source"], r["source_license"]) for r in rows})
    pairs = df.select("source", "source_license").unique().sort("source", "source_license", nulls_last=True).rows()
    every_source = summarize(pairs)
    first_license: dict[str, str | None] = {}
    for source, text in pairs:
        first_license.setdefault(source, text)
    sources = {s: {"exported": exported_by_source.get(s, 0), "collected": n, "license": every_source.by_source[s],
                   "license_text": first_license.get(s) or "(none given)"} for s, n in sorted(collected_by_source.items())}
    collected = manifests[0].get("rows_out") if manifests else None
    quarantined = sum(int(m.get("quarantined") or 0) for m in manifests)
    funnel = funnel_mod.compute(df, quarantined=quarantined, collected=collected)
    stages = [{"stage": m.get("stage"), "rows_in": m.get("rows_in"), "rows_out": m.get("rows_out"),
               "new_drops": m.get("new_drops") or {}} for m in manifests]
    balance = next((m.get("stats") or {} for m in manifests if m.get("stage") == "balance"), {})
    return Summary(
        splits={s: splits[s] for s in sorted(splits, key=lambda s: (s not in SPLIT_ORDER, SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 0, s))},
        dimensions=dict(sorted(dims.items())), languages=Counter(r["lang"] for r in rows), kinds=Counter(kinds),
        sources=sources, licenses=licenses, funnel=funnel, stages=stages,
        synthesis=synthesis_facts(df, rows, manifests), review=review_facts(rows, manifests), balance=balance)


def synthesis_facts(df: pl.DataFrame, rows: list[dict[str, Any]], manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """Models, templates and judge scores of the exported answers; the synthesis filters and what they dropped."""
    synthesized = [r for r in rows if was_synthesized(r)]
    metas = [r["meta"].get("synthesize") or {} for r in synthesized]
    scores = [s for s in (judge_score(r) for r in synthesized) if s is not None]
    filters = {reason: n for reason, n in funnel_mod.drop_counts(df).items() if reason.startswith("synth")}
    stats = next((m.get("stats") or {} for m in manifests if m.get("stage") == "synthesize"), {})
    shas = stats.get("templates") or {}
    return {
        "synthesized": len(synthesized), "from_source": len(rows) - len(synthesized),
        "models": Counter(str(m["model"]) for m in metas if m.get("model")),
        "templates": Counter(f"{m['template']} (sha {m.get('template_sha') or shas.get(m['template'], '?')})"
                             for m in metas if m.get("template")),
        "judge_score_mean": round(mean(scores), 2) if scores else None, "judged": len(scores),
        "filters": filters, "sample": stats.get("sample") or {},
    }


def review_facts(rows: list[dict[str, Any]], manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """How many exported rows a person reviewed, and how often reviewers agreed (where recorded)."""
    reviewed = [r["meta"].get("review") or {} for r in rows if r["label_origin"] == "human" or r["meta"].get("review")]
    agreement = [float(m["agreement"]) for m in reviewed if isinstance(m.get("agreement"), (int, float))]
    agreed = [bool(m["agreed"]) for m in reviewed if isinstance(m.get("agreed"), bool)]
    stage = next((m for m in manifests if m.get("stage") == "review"), None)
    stats = (stage or {}).get("stats") or {}
    return {
        "reviewed": len(reviewed), "total": len(rows),
        "agreement_mean": round(mean(agreement), 3) if agreement else None,
        "agreed_share": round(sum(agreed) / len(agreed), 3) if agreed else None,
        "stage_agreement": {k: v for k, v in stats.items() if any(w in k for w in ("agree", "kappa", "alpha"))},
    }




def exportable(df: pl.DataFrame) -> pl.DataFrame:
    """Rows that go into the dataset: no drop_reason and a response (pending synthesis stays out)."""
    return records.kept(df).filter(HAS_RESPONSE)


def prepare(df: pl.DataFrame) -> tuple[list[dict[str, Any]], list[str], int]:
    """Exported rows as dicts (meta parsed), their kinds, and the count of rows left out as pending synthesis."""
    live = records.kept(df)
    rows = exportable(df).to_dicts()
    for row in rows:
        row["meta"] = records.load_meta(row["meta"])
    return rows, [record_kind(r) or "unlabelled" for r in rows], live.height - len(rows)
