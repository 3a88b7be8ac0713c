"""Which row represents a cluster: a documented, configurable and deterministic order.

Rows already dropped by an earlier stage never represent a cluster while a kept row is in it. Then the
criteria in `prefer` apply in order:
  response  - rows with a non-empty response first (an answer is work already done)
  human     - human-labelled rows (label_origin == "human") first
  source    - rows whose source comes earlier in `source_priority` first (unlisted sources last)
  longest   - longer prompts first (more context kept)
and the smallest record id breaks any remaining tie, so the choice never depends on input order.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from curate.records import ANSWERED

Criterion = Literal["response", "human", "source", "longest"]
DEFAULT_PREFER: list[Criterion] = ["response", "human", "source", "longest"]


# the record columns rank_columns reads; ``answered`` (records.ANSWERED_FACT) and ``_chars`` are given beside them
RANK_READS = ["drop_reason", "label_origin", "source", "id"]


def rank_columns(prefer: list[Criterion], source_priority: list[str]) -> list[pl.Expr]:
    """Sort expressions, smaller = better, in order of importance (``_chars``: the compared text's length)."""
    exprs = [pl.col("drop_reason").is_not_null().alias("_r_dropped")]
    priority = {name: i for i, name in enumerate(source_priority)}
    for criterion in prefer:
        if criterion == "response":
            exprs.append((~pl.col(ANSWERED)).alias("_r_response"))
        elif criterion == "human":
            exprs.append((pl.col("label_origin").fill_null("") != "human").alias("_r_human"))
        elif criterion == "source":
            exprs.append(pl.col("source").replace_strict(priority, default=len(priority), return_dtype=pl.Int64)
                         .alias("_r_source"))
        elif criterion == "longest":
            exprs.append((-pl.col("_chars")).alias("_r_longest"))
    exprs.append(pl.col("id").alias("_r_id"))
    return exprs


def representatives(df: pl.DataFrame, roots: np.ndarray, chars: np.ndarray, answered: pl.Series | None,
                    prefer: list[Criterion], source_priority: list[str]) -> np.ndarray:
    """Row index of the representative of each row's cluster (roots: a cluster label per row, a row index;
    chars: each row's compared text's length in characters; answered: whether each row has an answer, needed
    when ``prefer`` holds "response")."""
    rep_of_root = np.arange(len(roots), dtype=np.int64)  # a row alone represents itself
    clustered = np.flatnonzero(np.bincount(roots, minlength=len(roots))[roots] > 1)
    if len(clustered) == 0:
        return rep_of_root[roots]
    # only the rows of clusters are ranked (a third of a million-row log, not all of it)
    given = [pl.Series("_chars", chars[clustered], dtype=pl.Int64)]
    if answered is not None:
        given.append(answered.gather(clustered).alias(ANSWERED))
    ranked = df.select(RANK_READS)[clustered].with_columns(given).select(
        rank_columns(prefer, source_priority)).with_columns(
        pl.Series("_root", roots[clustered]), pl.Series("_row", clustered, dtype=pl.Int64))
    keys = [c for c in ranked.columns if c.startswith("_r_")]
    best = ranked.sort(keys).group_by("_root", maintain_order=True).first().select("_root", "_row")
    rep_of_root[best["_root"].to_numpy()] = best["_row"].to_numpy()
    return rep_of_root[roots]
