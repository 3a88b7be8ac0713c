"""Which rows fill a stratum: human-reviewed first, then higher judge scores, then diversity.

Ties within (human, score) are broken by a seeded hash of the id, so the pick does not depend on
input order. Diversity is greedy: within a tie group, rows whose dup cluster and template are not
used yet come first, then rows with one of them new, then the rest.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

import xxhash


@dataclass
class Candidate:
    id: str
    human: bool
    score: float | None
    cluster: str  # dup_cluster, or the id itself when the row has none
    template: str | None

    def sort_key(self, seed: int) -> tuple:
        score = self.score if self.score is not None else float("-inf")
        return (not self.human, -score, seeded_hash(seed, self.id))


def seeded_hash(seed: int, key: str) -> int:
    return xxhash.xxh64_intdigest(key.encode("utf-8"), seed=seed & 0xFFFFFFFFFFFFFFFF)


def pick(candidates: list[Candidate], quota: int, seed: int, used_clusters: set[str],
         used_templates: set[str]) -> list[str]:
    """Up to ``quota`` ids in preference order; updates the shared used-cluster/template sets."""
    chosen: list[str] = []
    ordered = sorted(candidates, key=lambda c: c.sort_key(seed))
    for _, group in groupby(ordered, key=lambda c: c.sort_key(seed)[:2]):
        rest = list(group)
        for allowed_repeats in (0, 1, 2):
            if len(chosen) >= quota or not rest:
                break
            later = []
            for c in rest:
                repeats = (c.cluster in used_clusters) + (c.template is not None and c.template in used_templates)
                if len(chosen) < quota and repeats <= allowed_repeats:
                    chosen.append(c.id)
                    used_clusters.add(c.cluster)
                    if c.template is not None:
                        used_templates.add(c.template)
                else:
                    later.append(c)
            rest = later
        if len(chosen) >= quota:
            break
    return chosen
