"""Train/test split by whole dup clusters, stratified by dimension x language.

A cluster (rows sharing ``dup_cluster``; a row without one is its own cluster) goes to one split,
so near-duplicates never straddle train and test. Each cluster belongs to the stratum most of its
rows are in; within a stratum, clusters in seeded order go to test while they fit its share.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

from curate.balance.select import seeded_hash


def assign_splits(rows: Iterable[tuple[str, str, tuple[str, str]]], test_fraction: float,
                  seed: int) -> dict[str, str]:
    """rows: (id, cluster, (dimension, lang)) of the selected rows -> {id: "train" | "test"}."""
    members: dict[str, list[str]] = defaultdict(list)
    strata: dict[str, Counter] = defaultdict(Counter)
    for rid, cluster, stratum in rows:
        members[cluster].append(rid)
        strata[cluster][stratum] += 1
    by_stratum: dict[tuple[str, str], list[str]] = defaultdict(list)
    for cluster, counts in strata.items():
        home = min(counts, key=lambda s: (-counts[s], s))
        by_stratum[home].append(cluster)
    split: dict[str, str] = {}
    for stratum in sorted(by_stratum):
        clusters = sorted(by_stratum[stratum], key=lambda c: (seeded_hash(seed, c), c))
        size = sum(len(members[c]) for c in clusters)
        want = round(size * test_fraction)
        in_test = 0
        for cluster in clusters:
            n = len(members[cluster])
            to_test = in_test + n <= want
            in_test += n if to_test else 0
            for rid in members[cluster]:
                split[rid] = "test" if to_test else "train"
    return split
