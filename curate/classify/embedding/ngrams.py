"""Hashed character n-grams of texts, per row, in one compiled pass over the Arrow UTF-8 bytes (numba).

The static encoder (static.py) is a table with a row per hash bucket; a text is the mean of its n-grams' rows.
The text seen: at most ``max_chars`` characters, lowercased (polars' per-character map, tokens.lowercase_table),
runs of white space as one space, one space added before and after; every character run of length
``minn``..``maxn`` is an n-gram (Chinese characters and their bigrams, English letter 3-4-grams across word
boundaries alike), hashed with a 64-bit multiply-xor over the code points into ``buckets`` buckets. With
``words``, each run between spaces (an English word, a Chinese clause) is one more feature, hashed apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl
from numba import njit

from curate.classify.fasttext.tokens import C_SPACE, lowercase_table
from curate.utf8 import decode_at, utf8_buffers

_SEED = np.uint64(0x9E3779B97F4A7C15)
_WORD_SEED = np.uint64(0xD6E8FEB86659FD93)
_MULT = np.uint64(0xBF58476D1CE4E5B9)
_SHIFT = np.uint64(31)
_SPACE = 32


@dataclass(frozen=True)
class NgramSpec:
    """Which n-grams, into how many buckets; stored with the table it indexes (a table is only valid with it)."""

    minn: int = 1
    maxn: int = 4
    buckets: int = 1 << 16
    max_chars: int = 1000
    words: int = 0  # 1: each whole word is a feature too

    def as_dict(self) -> dict[str, int]:
        return {"minn": self.minn, "maxn": self.maxn, "buckets": self.buckets, "max_chars": self.max_chars,
                "words": self.words}


@njit(cache=True, nogil=True, inline="always")
def _codes(data, start, end, lower, is_space, max_chars, buf):
    """The row's normalised code points into ``buf`` (space, text, space); returns how many."""
    n = 1
    buf[0] = _SPACE
    i = start
    chars = 0
    while i < end and chars < max_chars:
        cp, size = decode_at(data, i)
        i += size
        chars += 1
        low = lower[cp]
        if low >= 0:
            cp = low
        if is_space[cp]:
            if buf[n - 1] == _SPACE:
                continue
            cp = _SPACE
        buf[n] = cp
        n += 1
    if buf[n - 1] != _SPACE:
        buf[n] = _SPACE
        n += 1
    return n


@njit(cache=True, nogil=True)
def _lengths(data, offsets, lower, is_space, max_chars, out, words):
    """Per row: its normalised length and how many words it has (runs between its spaces)."""
    buf = np.empty(max_chars + 2, dtype=np.int64)
    for r in range(out.shape[0]):
        n = _codes(data, offsets[r], offsets[r + 1], lower, is_space, max_chars, buf)
        out[r] = n
        spaces = 0
        for i in range(n):
            if buf[i] == _SPACE:
                spaces += 1
        words[r] = spaces - 1


@njit(cache=True, nogil=True)
def _fill(data, offsets, lower, is_space, max_chars, minn, maxn, buckets, with_words, indptr, indices):
    buf = np.empty(max_chars + 2, dtype=np.int64)
    nb = np.uint64(buckets)
    for r in range(offsets.shape[0] - 1):
        n = _codes(data, offsets[r], offsets[r + 1], lower, is_space, max_chars, buf)
        k = indptr[r]
        for i in range(n):
            h = _SEED
            for t in range(min(maxn, n - i)):
                h = (h ^ np.uint64(buf[i + t])) * _MULT
                if t + 1 >= minn:
                    indices[k] = np.int32((h ^ (h >> _SHIFT)) % nb)
                    k += 1
        if with_words:
            h = _WORD_SEED
            for i in range(1, n):
                if buf[i] == _SPACE:
                    indices[k] = np.int32((h ^ (h >> _SHIFT)) % nb)
                    k += 1
                    h = _WORD_SEED
                else:
                    h = (h ^ np.uint64(buf[i])) * _MULT


def _ngrams_per_row(length: np.ndarray, minn: int, maxn: int) -> np.ndarray:
    return sum(np.maximum(length - n + 1, 0) for n in range(minn, maxn + 1))


def ngram_buckets(texts: pl.Series | Sequence[str | None], spec: NgramSpec) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices): row r's n-gram buckets are indices[indptr[r]:indptr[r + 1]] (repeats kept)."""
    s = texts if isinstance(texts, pl.Series) else pl.Series("text", list(texts), dtype=pl.Utf8)
    data, offsets = utf8_buffers(s.cast(pl.Utf8).fill_null(""))
    lower, classes = lowercase_table()
    is_space = classes == C_SPACE
    length, words = np.empty(len(s), dtype=np.int64), np.empty(len(s), dtype=np.int64)
    _lengths(data, offsets, lower, is_space, spec.max_chars, length, words)
    indptr = np.zeros(len(s) + 1, dtype=np.int64)
    np.cumsum(_ngrams_per_row(length, spec.minn, spec.maxn) + (words if spec.words else 0), out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    _fill(data, offsets, lower, is_space, spec.max_chars, spec.minn, spec.maxn, spec.buckets, spec.words, indptr,
          indices)
    return indptr, indices
