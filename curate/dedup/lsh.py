"""LSH banding: bands x rows from the threshold, and candidate pairs from equal band keys."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

ALL_PAIRS_UP_TO = 8  # a bucket larger than this yields a chain + star (2k - 3 pairs) instead of all k(k-1)/2


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
    hundreds of rows, or many copies of one prompt) give a chain and a star in row order, enough to
    connect what verification keeps without a quadratic blow-up. Pairs are deduplicated band by band,
    so memory holds about the distinct pairs, not bands x pairs.
    """
    n = keys.shape[1]
    merged = np.zeros(0, dtype=np.int64)
    pending: list[np.ndarray] = []
    pending_size = 0
    for band in keys:
        codes = _band_pairs(band, n)
        if len(codes):
            pending.append(codes)
            pending_size += len(codes)
        if pending_size > max(len(merged), 1 << 20):  # amortised: merge when pending outgrows merged
            merged = np.unique(np.concatenate([merged, *pending]))
            pending, pending_size = [], 0
    if pending:
        merged = np.unique(np.concatenate([merged, *pending]))
    return np.stack([merged // n, merged % n], axis=1)


def _band_pairs(band: np.ndarray, n: int) -> np.ndarray:
    """Unique pair codes i * n + j (i < j) of one band's buckets."""
    order = np.argsort(band, kind="stable")
    sorted_keys = band[order]
    edge = np.ones(n + 1, dtype=bool)
    edge[1:n] = sorted_keys[1:] != sorted_keys[:-1]
    starts = np.nonzero(edge)[0]
    sizes = np.diff(starts)
    starts = starts[:-1]
    found = []
    for size in np.unique(sizes[sizes > 1]):
        s = starts[sizes == size]
        if size <= ALL_PAIRS_UP_TO:
            i_off, j_off = np.triu_indices(int(size), k=1)
        else:
            i_off = np.concatenate([np.arange(size - 1), np.zeros(size - 2, dtype=np.int64)])
            j_off = np.concatenate([np.arange(1, size), np.arange(2, size)])
        a, b = order[s[:, None] + i_off].ravel(), order[s[:, None] + j_off].ravel()
        found.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
