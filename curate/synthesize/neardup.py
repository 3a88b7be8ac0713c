"""Near-duplicate answers across the corpus: templated, copy-paste refusals teach a model one sentence.

MinHash (datasketch) over character 5-grams of the normalised answer, which works for Chinese and
English alike; LSH finds candidates and the MinHash Jaccard estimate confirms them. Answers are offered
in a fixed order and the first of a near-duplicate group is kept.
"""
from __future__ import annotations

from datasketch import MinHash, MinHashLSH

from curate.text import normalize

SHINGLE = 5
NUM_PERM = 128


def _minhash(text: str) -> MinHash:
    norm = " ".join(normalize(text).lower().split())
    shingles = {norm[i:i + SHINGLE] for i in range(max(1, len(norm) - SHINGLE + 1))}
    m = MinHash(num_perm=NUM_PERM, seed=1)
    m.update_batch([s.encode("utf-8") for s in shingles])
    return m


class AnswerIndex:
    def __init__(self, threshold: float):
        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self._hashes: dict[str, MinHash] = {}

    def add(self, key: str, text: str) -> None:
        """Index an answer unconditionally (existing corpus answers)."""
        m = _minhash(text)
        if key not in self._hashes:
            self._lsh.insert(key, m)
            self._hashes[key] = m

    def add_if_new(self, key: str, text: str) -> str | None:
        """Index the answer unless it nearly duplicates one already indexed; returns that one's key."""
        m = _minhash(text)
        for other in self._lsh.query(m):
            if m.jaccard(self._hashes[other]) >= self.threshold:
                return other
        self._lsh.insert(key, m)
        self._hashes[key] = m
        return None
