"""Near-duplicate answers across the corpus: templated, copy-paste refusals teach a model one sentence.

The same MinHash as the dedup stage (curate.dedup: its shingles, its LSH band keys, its exact Jaccard), applied
one answer at a time: answers are offered in a fixed order, LSH buckets give the candidates, the exact Jaccard
of the shingle sets confirms them, and the first of a near-duplicate group is kept.
"""
from __future__ import annotations

import numpy as np

from curate.dedup.jaccard import jaccard
from curate.dedup.lsh import optimal_param
from curate.dedup.shingles import Shingles, Shingling, shingle, unique_per_row
from curate.dedup.signatures import band_keys

# Answers are paragraphs, not short prompts: word 3-grams (the usual document near-duplicate shingle) and,
# for Chinese, character 5-grams (what this filter used before it shared dedup's MinHash).
SHINGLING = Shingling(word_n=3, char_n=5)
NUM_PERM = 128


class AnswerIndex:
    def __init__(self, threshold: float):
        self.threshold = threshold
        # missed pairs weigh more than extra candidates (they are verified exactly), as in the dedup stage
        self.bands, self.rows = optimal_param(threshold, NUM_PERM, 0.05, 0.95)
        self._keys: list[str] = []
        self._shingles: list[np.ndarray] = []
        self._buckets: list[dict[int, list[int]]] = [{} for _ in range(self.bands)]
        self._pending: list[tuple[str, str]] = []  # corpus answers, indexed in one batch before the next query

    def add(self, key: str, text: str) -> None:
        """Index an answer unconditionally (existing corpus answers)."""
        self._pending.append((key, text))

    def add_if_new(self, key: str, text: str) -> str | None:
        """Index the answer unless it nearly duplicates one already indexed; returns that one's key."""
        self._flush()
        sh, keys = self._sketch([text])
        values = sh.row(0)
        seen = sorted({entry for b in range(self.bands) for entry in self._buckets[b].get(int(keys[b, 0]), ())})
        for entry in seen:
            if self._similarity(values, self._shingles[entry]) >= self.threshold:
                return self._keys[entry]
        self._insert(key, values, keys[:, 0])
        return None

    def _sketch(self, texts: list[str]) -> tuple[Shingles, np.ndarray]:
        sh = unique_per_row(shingle(texts, SHINGLING))
        return sh, band_keys(sh, self.bands, self.rows)

    def _flush(self) -> None:
        if not self._pending:
            return
        keys, texts = zip(*self._pending)
        self._pending = []
        sh, bands = self._sketch(list(texts))
        known = set(self._keys)
        for i, key in enumerate(keys):
            if key not in known:
                known.add(key)
                self._insert(key, sh.row(i), bands[:, i])

    def _insert(self, key: str, values: np.ndarray, keys: np.ndarray) -> None:
        entry = len(self._keys)
        self._keys.append(key)
        self._shingles.append(values)
        for b in range(self.bands):
            self._buckets[b].setdefault(int(keys[b]), []).append(entry)

    @staticmethod
    def _similarity(a: np.ndarray, b: np.ndarray) -> float:
        pair = Shingles(np.concatenate([a, b]), np.array([0, len(a), len(a) + len(b)], dtype=np.int64))
        return float(jaccard(pair, np.array([[0, 1]], dtype=np.int64))[0])
