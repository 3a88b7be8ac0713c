"""Exact Jaccard similarity of candidate pairs, from the rows' unique shingle sets, vectorised."""
from __future__ import annotations

import numpy as np

from curate.dedup.shingles import SHINGLE_BITS, Shingles, subset

PAIR_BLOCK = 1 << 16  # pair index must fit in the 16 bits above the 48-bit shingle id


def _gather(sh: Shingles, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated shingles of `rows` and, for each value, its position in `rows`."""
    sub = subset(sh, rows)
    return sub.values, np.repeat(np.arange(len(rows), dtype=np.int64), sub.sizes())


def jaccard(sh: Shingles, pairs: np.ndarray) -> np.ndarray:
    """float64 Jaccard of each pair (rows' shingle sets are unique and sorted, see shingles.unique_per_row)."""
    out = np.empty(len(pairs), dtype=np.float64)
    sizes = sh.sizes()
    for p0 in range(0, len(pairs), PAIR_BLOCK):
        block = pairs[p0:p0 + PAIR_BLOCK]
        k = len(block)
        vals_i, own_i = _gather(sh, block[:, 0])
        vals_j, own_j = _gather(sh, block[:, 1])
        # each row's shingles are sorted and unique, so (pair << 48 | value) is sorted on both sides:
        # a binary search per value counts the intersection without sorting anything
        keys_i = (own_i.astype(np.uint64) << np.uint64(SHINGLE_BITS)) | vals_i
        keys_j = (own_j.astype(np.uint64) << np.uint64(SHINGLE_BITS)) | vals_j
        at = np.minimum(np.searchsorted(keys_j, keys_i), len(keys_j) - 1)
        inter = np.bincount(own_i[keys_j[at] == keys_i], minlength=k)
        union = sizes[block[:, 0]] + sizes[block[:, 1]] - inter
        out[p0:p0 + k] = inter / np.maximum(union, 1)
    return out
