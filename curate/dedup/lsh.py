"""LSH banding: bands x rows from the threshold, and candidate pairs from equal band keys."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

ALL_PAIRS_UP_TO = 32  # a bucket larger than this yields a chain + star instead of all its pairs


@lru_cache(maxsize=64)
def optimal_param(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                  false_negative_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimising the weighted areas under the LSH S-curve
    below the threshold (false positives) and above it (false negatives), as text-dedup's optimal_param.
    """
    lo = np.linspace(0.0, threshold, 257)
    hi = np.linspace(threshold, 1.0, 257)
    best, best_err = (1, 1), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(1 - (1 - lo**r) ** b, lo)
            fn = np.trapezoid((1 - hi**r) ** b, hi)
            err = false_positive_weight * fp + false_negative_weight * fn
            if err < best_err:
                best, best_err = (b, r), err
    return best


def detection_probability(similarity: float, bands: int, rows: int) -> float:
    return 1.0 - (1.0 - similarity**rows) ** bands


def candidate_pairs(keys: np.ndarray) -> np.ndarray:
    """Pairs (i < j) of rows sharing a key in any band: int64 array [n, 2], unique, sorted.

    Buckets of up to ALL_PAIRS_UP_TO rows give all their pairs; bigger buckets (a template shared by
    hundreds of rows) give a chain and a star in row order, enough to connect what verification keeps
    without a quadratic blow-up.
    """
    found = []
    n = keys.shape[1]
    for band in keys:
        order = np.argsort(band, kind="stable")
        sorted_keys = band[order]
        edge = np.ones(n + 1, dtype=bool)
        edge[1:n] = sorted_keys[1:] != sorted_keys[:-1]
        starts = np.nonzero(edge)[0]
        sizes = np.diff(starts)
        starts = starts[:-1]
        for size in np.unique(sizes[sizes > 1]):
            s = starts[sizes == size]
            if size <= ALL_PAIRS_UP_TO:
                i_off, j_off = np.triu_indices(int(size), k=1)
            else:
                i_off = np.concatenate([np.arange(size - 1), np.zeros(size - 2, dtype=np.int64)])
                j_off = np.concatenate([np.arange(1, size), np.arange(2, size)])
            found.append(np.stack([order[s[:, None] + i_off].ravel(), order[s[:, None] + j_off].ravel()], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1).astype(np.int64)
    code = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack([code // n, code % n], axis=1)
