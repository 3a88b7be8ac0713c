"""Coarse source labels as partial labels: a row labelled "crimes and illegal activities" is harmful and belongs to
*one of* a set of dimensions (taxonomy/<name>/candidates.yaml), not necessarily to the catch-all S05.

Training can treat such rows three ways (``TrainConfig.coarse``):
- ``generic``: as the mappings say, positives of the catch-all (what every model before did);
- ``harm_only``: evidence of harm only: they teach the harmful flag (embedding layer, calibration) but no dimension;
- ``partial``: each row takes its most likely dimension among its candidates, scored by dimension heads trained
  without the coarse rows; the heads are refitted with the assignments and the rows reassigned (``rounds``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

MODES = ("generic", "harm_only", "partial")  # train.COARSE_MODES offers them as flags


def candidate_sets(rows: pl.DataFrame, taxonomy) -> pl.Series:
    """Per row of ``rows`` (``source``, ``source_labels``, ``target``), its candidate dimensions when it is a coarse
    row (target exactly the generic dimension, and a source label listed as coarse for its source), else null."""
    coarse = taxonomy.coarse_labels() if taxonomy is not None else {}
    generic = taxonomy.generic if taxonomy is not None else []
    empty = pl.Series("candidates", [None] * rows.height, dtype=pl.List(pl.Utf8))
    if not coarse or not generic or rows.height == 0:
        return empty
    table = pl.DataFrame({"source": [s for s, _ in coarse], "label": [label for _, label in coarse],
                          "candidates": list(coarse.values())},
                         schema={"source": pl.Utf8, "label": pl.Utf8, "candidates": pl.List(pl.Utf8)})
    indexed = rows.select("source", "source_labels", "target").with_row_index("_row")
    only_generic = (pl.col("target").list.len() > 0) & (pl.col("target").list.set_difference(generic).list.len() == 0)
    hits = indexed.filter(only_generic).explode("source_labels").rename({"source_labels": "label"}) \
        .join(table, on=["source", "label"], how="inner").group_by("_row").agg(pl.col("candidates").first())
    found = indexed.select("_row").join(hits, on="_row", how="left").sort("_row")["candidates"]
    return found.alias("candidates")


def assign(candidates: pl.Series, scores: np.ndarray, labels: Sequence[str]) -> list[list[str] | None]:
    """Per row, ``[the candidate with the highest score]`` (scores in ``labels`` column order), or None for rows
    without candidates."""
    column = {label: j for j, label in enumerate(labels)}
    mask = np.zeros(scores.shape, dtype=bool)
    pairs = pl.DataFrame({"c": candidates}).with_row_index("row").explode("c").drop_nulls("c") \
        .filter(pl.col("c").is_in(list(column)))
    if pairs.height:
        mask[pairs["row"].to_numpy(), pairs["c"].replace_strict(column, return_dtype=pl.Int64).to_numpy()] = True
    best = np.where(mask, scores, -np.inf).argmax(axis=1)
    names = np.array(list(labels), dtype=object)[best]
    has = mask.any(axis=1)
    return [[str(n)] if h else None for n, h in zip(names.tolist(), has.tolist())]


def resolve(labelled: pl.DataFrame, taxonomy, mode: str, score_fn, rounds: int = 2) -> tuple[pl.DataFrame, dict]:
    """``labelled`` (rows with a ``target``) with its coarse rows resolved by ``mode``, and a report (counts, and
    for ``partial`` the dimension each coarse row went to). ``score_fn(train_rows, rows) -> (scores, labels)``
    scores ``rows`` with dimension heads fitted on ``train_rows`` (called ``rounds`` times for ``partial``).
    ``harm_only`` rows come back with a null target: the caller moves them to the harm-only rows."""
    if mode not in MODES:
        raise ValueError(f"coarse must be one of {', '.join(MODES)}, not {mode!r}")
    cands = candidate_sets(labelled, taxonomy)
    is_coarse = cands.is_not_null()
    report: dict = {"mode": mode, "coarse_rows": int(is_coarse.sum())}
    if mode == "generic" or not is_coarse.any():
        return labelled, report
    if mode == "harm_only":
        return labelled.with_columns(pl.when(is_coarse).then(None).otherwise(pl.col("target")).alias("target")), report
    coarse_rows = labelled.filter(is_coarse)
    train = labelled.filter(~is_coarse)  # round 1: heads that never saw a coarse row
    for _ in range(max(rounds, 1)):
        scores, labels = score_fn(train, coarse_rows)
        targets = assign(cands.filter(is_coarse), scores, labels)
        coarse_rows = coarse_rows.with_columns(pl.Series("target", targets, dtype=pl.List(pl.Utf8)))
        train = pl.concat([labelled.filter(~is_coarse), coarse_rows])
    report["assigned"] = dict(coarse_rows["target"].list.first().value_counts().sort("target").iter_rows())
    resolved = pl.concat([labelled.filter(~is_coarse), coarse_rows])
    return resolved, report
