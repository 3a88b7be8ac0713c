"""Which rows fill a stratum: human-reviewed first, then higher judge scores, then diversity.

Ties within (human, score) are broken by a seeded hash of the id, so the pick does not depend on
input order. Diversity is greedy: within a tie group, rows whose dup cluster and template are not
used yet come first, then rows with one of them new, then the rest. Clusters and templates used by
one stratum count as used for the strata picked after it.

Columnar: the eligible rows are sorted once into preference order and the greedy pass runs compiled over
integer codes of their clusters and templates, so a run holds a few numbers per row, not an object.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import xxhash
from numba import njit

HASH_CHUNK = 100_000  # ids hashed per list, so only that many Python ints exist at once


def seeded_hash(seed: int, key: str) -> int:
    return xxhash.xxh64_intdigest(key.encode("utf-8"), seed=seed & 0xFFFFFFFFFFFFFFFF)


def seeded_hashes(ids: pl.Series, seed: int) -> np.ndarray:
    """``seeded_hash`` of every id, as uint64."""
    out = np.empty(len(ids), dtype=np.uint64)
    for start in range(0, len(ids), HASH_CHUNK):
        chunk = ids.slice(start, HASH_CHUNK).to_list()
        out[start:start + len(chunk)] = [seeded_hash(seed, rid) for rid in chunk]
    return out


def _codes(values: pl.Series) -> np.ndarray:
    """Dense integer code of each value (-1 for null)."""
    return (values.rank("dense") - 1).fill_null(-1).cast(pl.Int64).to_numpy()


class Picker:
    """The eligible rows in preference order within each stratum, and the clusters and templates used so far.

    ``rows`` needs the ``strata`` columns (together a stratum's key), ``id``, ``_human``, ``_score``, ``_cluster``
    and ``_template``.
    """

    def __init__(self, rows: pl.DataFrame, strata: list[str], seed: int):
        score = pl.col("_score").fill_nan(None).fill_null(float("-inf"))
        ordered = rows.with_columns(pl.Series("_tie", seeded_hashes(rows["id"], seed)), score.alias("_order_score"))
        self.rows = ordered.sort([*strata, "_human", "_order_score", "_tie"],
                                 descending=[*[False] * len(strata), True, True, False], maintain_order=True)
        bounds = self.rows.select(strata).with_row_index("_at").group_by(strata).agg(
            pl.col("_at").min().alias("start"), pl.len().alias("n"))
        self.slices = {tuple(key): (start, n) for *key, start, n in bounds.iter_rows()}
        tie_group = self.rows.select(pl.struct(*strata, "_human", "_order_score").rle_id())
        self.group = tie_group.to_series().to_numpy().astype(np.int64)
        self.cluster = _codes(self.rows["_cluster"])
        self.template = _codes(self.rows["_template"])
        self.used_cluster = np.zeros(int(self.cluster.max(initial=-1)) + 1, dtype=np.bool_)
        self.used_template = np.zeros(int(self.template.max(initial=-1)) + 1, dtype=np.bool_)

    def pick(self, stratum: tuple, quota: int) -> np.ndarray:
        """Up to ``quota`` positions in ``rows`` of the stratum's rows, in the order picked."""
        start, n = self.slices.get(stratum, (0, 0))
        if quota <= 0 or n == 0:
            return np.zeros(0, dtype=np.int64)
        return _greedy(self.group[start:start + n], self.cluster[start:start + n], self.template[start:start + n],
                       quota, self.used_cluster, self.used_template) + start


@njit(cache=True)
def _greedy(group, cluster, template, quota, used_cluster, used_template):
    """Within each tie group in order, three passes: rows with no used cluster or template, then with one
    used, then any; stops at ``quota``. Updates the used flags."""
    chosen = np.empty(min(quota, len(group)), dtype=np.int64)
    rest = np.empty(len(group), dtype=np.int64)
    k, lo = 0, 0
    while lo < len(group) and k < quota:
        hi = lo
        while hi < len(group) and group[hi] == group[lo]:
            hi += 1
        m = hi - lo
        for t in range(m):
            rest[t] = lo + t
        for allowed in range(3):
            if k >= quota or m == 0:
                break
            later = 0
            for t in range(m):
                i = rest[t]
                repeats = np.int64(used_cluster[cluster[i]]) + np.int64(template[i] >= 0 and used_template[template[i]])
                if k < quota and repeats <= allowed:
                    chosen[k] = i
                    k += 1
                    used_cluster[cluster[i]] = True
                    if template[i] >= 0:
                        used_template[template[i]] = True
                else:
                    rest[later] = i
                    later += 1
            m = later
        lo = hi
    return chosen[:k]
