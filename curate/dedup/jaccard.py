"""Exact Jaccard similarity of candidate pairs, from the rows' distinct shingle ids (compiled hash sets)."""
from __future__ import annotations

import numpy as np

from curate.dedup import kernels
from curate.dedup.shingles import Shingles


def jaccard(sh: Shingles, pairs: np.ndarray) -> np.ndarray:
    """float64 Jaccard of each pair [i, j] of rows (each row's ids distinct, as shingle() makes them).
    Pairs sorted by their first row are fastest: that row's hash set is built once."""
    if len(pairs) == 0:
        return np.zeros(0, dtype=np.float64)
    slots = kernels.set_size(int(sh.sizes().max(initial=1)))
    return kernels.pair_jaccard(sh.values, sh.offsets, np.ascontiguousarray(pairs, dtype=np.int64), slots)
