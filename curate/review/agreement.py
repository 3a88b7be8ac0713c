"""Inter-annotator agreement: Cohen's kappa (two raters), Fleiss' kappa (more), percent agreement.

Small functions instead of a dependency: scikit-learn or statsmodels would add 30-100 MB for ~30 lines.
They are checked against published worked examples in tests/test_review_units.py.

``items`` is a list of per-task rating lists: ``[["yes", "no"], ["yes", "yes", "yes"], ...]`` (one entry
per annotator of that task). Tasks with fewer than two ratings say nothing about agreement and are ignored.
A kappa is None when it is undefined (every rating in one category: chance agreement is already 1).
"""
from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa for two raters who rated the same items (a[i] and b[i] rate item i)."""
    if len(a) != len(b):
        raise ValueError("cohen_kappa: both raters must rate the same items")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca.keys() | cb.keys()) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa; items may have different numbers of raters (each item's agreement uses its own n)."""
    items = [list(r) for r in items if len(r) >= 2]
    if not items:
        return None
    totals: Counter = Counter()
    p_items = []
    for ratings in items:
        n = len(ratings)
        counts = Counter(ratings)
        totals.update(counts)
        p_items.append((sum(c * c for c in counts.values()) - n) / (n * (n - 1)))
    all_ratings = sum(totals.values())
    p_bar = sum(p_items) / len(p_items)
    p_e = sum((c / all_ratings) ** 2 for c in totals.values())
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def percent_agreement(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Share of tasks (with two or more ratings) on which every annotator gave the same answer."""
    items = [r for r in items if len(r) >= 2]
    if not items:
        return None
    return sum(len(set(r)) == 1 for r in items) / len(items)


def agreement(items: Sequence[Sequence[Hashable]]) -> dict:
    """Kappa (Cohen when every rated task has exactly two ratings, else Fleiss) and percent agreement."""
    rated = [list(r) for r in items if len(r) >= 2]
    if rated and all(len(r) == 2 for r in rated):
        method, kappa = "cohen", cohen_kappa([r[0] for r in rated], [r[1] for r in rated])
    else:
        method, kappa = "fleiss", fleiss_kappa(rated)
    return {
        "method": method if rated else None,
        "kappa": None if kappa is None else round(kappa, 4),
        "percent": None if not rated else round(percent_agreement(rated), 4),
        "tasks": len(rated),
    }
