"""Which records reviewers see: a deterministic sample (same input and seed, same sample).

- ``stratified``: equal shares per stratum (primary dimension x language), smaller strata taken whole and
  their unused share spread over the others (round robin over shuffled strata).
- ``uncertain``: rows whose harmful flag is undecided (``prompt_harmful`` null: the classifier was unsure) first,
  then lowest classifier confidence first (the dimension score closest to 0.5 in ``category_scores``).
- ``disagreement``: records whose source labels and classifier disagree first (most disagreement first),
  then by uncertainty.
- ``all``: every kept record.

Only kept rows (no ``drop_reason``) are sampled.
"""
from __future__ import annotations

import json
import random
from typing import Any

import polars as pl

from curate import records
from curate.taxonomy import SAFE

STRATEGIES = ("stratified", "uncertain", "disagreement", "all")


def stratum(categories: list[str] | None, lang: str | None) -> str:
    """The primary (lowest id) dimension x language, e.g. ``S03/zh``; no category = ``S00`` (safe)."""
    primary = sorted(categories)[0] if categories else SAFE
    return f"{primary}/{lang or 'unknown'}"


def scores(value: str | None) -> dict[str, float]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): float(v) for k, v in parsed.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def confidence(category_scores: str | None) -> float | None:
    """How sure the classifier is: the smallest distance of any dimension score from 0.5, doubled (0..1)."""
    s = scores(category_scores)
    if not s:
        return None
    return round(min(abs(p - 0.5) for p in s.values()) * 2, 6)


def uncertainty(category_scores: str | None) -> float | None:
    """The task priority reviewers sort by: 1 - confidence (1 = a score sat at 0.5; None = not scored)."""
    sure = confidence(category_scores)
    return None if sure is None else round(1.0 - sure, 6)


def _classifier_view(row: dict[str, Any]) -> tuple[set[str] | None, set[str] | None, Any, Any]:
    """(source categories, classifier categories, source harmful, classifier harmful) as far as known.

    Read from what the classify stage writes in ``meta["classify"]``: ``disagree_categories`` /
    ``disagree_harmful`` ({"source": ..., "classifier": ...}) where they differ, ``predicted`` otherwise.
    Without classify meta, the classifier's dimensions are those scoring 0.5 or more in ``category_scores``.
    S00 (safe) counts as no dimension.
    """
    meta = records.load_meta(row.get("meta")).get("classify") or {}
    own = set(row.get("categories") or [])
    harm = meta.get("disagree_harmful") or {}
    src_h, clf_h = harm.get("source"), harm.get("classifier")
    cats = meta.get("disagree_categories")
    if isinstance(cats, dict):
        return set(cats.get("source") or []) - {SAFE}, set(cats.get("classifier") or []) - {SAFE}, src_h, clf_h
    if "predicted" in meta or row.get("label_origin") not in (None, "source"):
        return None, None, src_h, clf_h  # classified without a recorded disagreement, or labels not the source's
    s = scores(row.get("category_scores"))
    return own, ({k for k, p in s.items() if p >= 0.5 and k != SAFE} if s else None), src_h, clf_h


def disagreement(row: dict[str, Any]) -> float:
    """0 = agree or unknown; up to 2 = disjoint dimensions and opposite harmful verdicts."""
    src, clf, src_h, clf_h = _classifier_view(row)
    score = 0.0
    if src is not None and clf is not None and (src or clf):
        score += 1.0 - len(src & clf) / len(src | clf)
    if isinstance(src_h, bool) and isinstance(clf_h, bool) and src_h != clf_h:
        score += 1.0
    return round(score, 6)


def select(df: pl.DataFrame, n: int | None, strategy: str = "stratified", seed: int = 0) -> pl.DataFrame:
    """The sample, in review order, with two extra columns: ``_stratum`` and ``_priority`` (the classifier's
    uncertainty, for task data). Stratified and all samples are ordered hardest first; uncertain and
    disagreement keep their own order."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown sampling strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    pool = records.kept(df)
    rows = pool.to_dicts()
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)  # seeded tie-break for every strategy
    tie = {i: k for k, i in enumerate(order)}
    strata = [stratum(r["categories"], r["lang"]) for r in rows]
    uncertain = [uncertainty(r["category_scores"]) for r in rows]
    hardest_first = {i: (uncertain[i] is None, -(uncertain[i] or 0.0), tie[i]) for i in range(len(rows))}
    if strategy == "stratified":
        groups: dict[str, list[int]] = {}
        for i in order:
            groups.setdefault(strata[i], []).append(i)
        picked: list[int] = []
        queues = [groups[k] for k in sorted(groups)]
        depth = 0
        while any(depth < len(q) for q in queues):
            picked.extend(q[depth] for q in queues if depth < len(q))
            depth += 1
    elif strategy == "uncertain":
        # rows classify left undecided (harmful or not: prompt_harmful null, see classify's review_band) first
        picked = sorted(range(len(rows)), key=lambda i: (rows[i]["prompt_harmful"] is not None, *hardest_first[i]))
    elif strategy == "disagreement":
        dis = [disagreement(r) for r in rows]
        picked = sorted(range(len(rows)), key=lambda i: (-dis[i], *hardest_first[i]))
    else:
        picked = order
    if n is not None:
        picked = picked[:n]
    if strategy in ("stratified", "all"):
        picked = sorted(picked, key=hardest_first.__getitem__)  # the strategy chose who; review hardest first
    out = pool[picked] if picked else pool.clear()
    return out.with_columns(
        pl.Series("_stratum", [strata[i] for i in picked], dtype=pl.Utf8),
        pl.Series("_priority", [uncertain[i] for i in picked], dtype=pl.Float64),
    )
