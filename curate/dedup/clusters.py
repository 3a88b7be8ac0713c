"""Union-find over row pairs, vectorised (hook roots to the smaller root, then jump pointers)."""
from __future__ import annotations

import numpy as np


def _compress(parent: np.ndarray) -> np.ndarray:
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Root (smallest row index) of each row's connected component; rows without pairs are their own root."""
    parent = np.arange(n, dtype=np.int64)
    if len(pairs) == 0:
        return parent
    i, j = pairs[:, 0], pairs[:, 1]
    while True:
        ri, rj = parent[i], parent[j]
        differ = ri != rj
        if not differ.any():
            return parent
        lo = np.minimum(ri[differ], rj[differ])
        hi = np.maximum(ri[differ], rj[differ])
        np.minimum.at(parent, hi, lo)  # parents only ever point to smaller indices: no cycles
        parent = _compress(parent)
