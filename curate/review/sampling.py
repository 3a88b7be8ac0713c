"""Which records reviewers see: a deterministic sample (same input and seed, same sample).

- ``stratified``: equal shares per stratum (primary dimension x language), smaller strata taken whole and
  their unused share spread over the others (round robin over shuffled strata).
- ``uncertain``: rows whose harmful flag is undecided (``prompt_harmful`` null: the classifier was unsure) first,
  then lowest classifier confidence first (the dimension score closest to 0.5 in ``category_scores``).
- ``disagreement``: records whose source labels and classifier disagree first (most disagreement first, from the
  facts classify writes), then by uncertainty.
- ``all``: every kept record.

Only kept rows (no ``drop_reason``) are sampled.
"""
from __future__ import annotations

import json
import random

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


def disagreements(df: pl.DataFrame) -> pl.Series:
    """Per row, how much the source's labels and the classifier's disagree: 0 = agree or unknown; up to 2 =
    disjoint dimensions and opposite harmful verdicts.

    Read from the facts classify writes (``category_disagreement``, ``harmful_disagreement``). A row classify never
    saw, labelled by its source, is compared with the dimensions scoring 0.5 or more in ``category_scores``."""
    unseen = (pl.col("category_disagreement").is_null()
              & (pl.col("label_origin").is_null() | (pl.col("label_origin") == "source"))).alias("_unseen")
    flags = df.select(unseen)["_unseen"].to_numpy()
    scored: list[list[str] | None] = [None] * df.height
    for i, value in zip(flags.nonzero()[0].tolist(), df["category_scores"].filter(flags).to_list()):
        s = scores(value)
        scored[i] = sorted(k for k, p in s.items() if p >= 0.5 and k != SAFE) if s else None
    fallback = pl.Series("_scored", scored, dtype=pl.List(pl.Utf8))
    by_scores = pl.when(pl.col("_scored").is_not_null()).then(records.jaccard_distance(pl.col("categories"),
                                                                                          pl.col("_scored")))
    total = (pl.col("category_disagreement").fill_null(by_scores).fill_null(0.0)
             + pl.col("harmful_disagreement").fill_null(False).cast(pl.Float64))
    return df.with_columns(fallback).select(total.round(6).alias("disagreement"))["disagreement"]


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
        dis = disagreements(pool).to_list()
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
