"""Shingles of many rows as flat arrays: texts -> uint64 shingle ids + row offsets, and the helpers around them.

How rows are tokenised and shingled lives in kernels.py (compiled per-row loops); this module prepares
the text (Unicode width and case folding, only on rows that need it), hands the Arrow UTF-8 buffer to the
kernels without a Python object per row, and keeps each row's shingles unique and sorted for the exact
Jaccard check.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.dedup import kernels
from curate.utf8 import utf8_buffers


@dataclass(frozen=True)
class Shingling:
    """How rows become shingles (kernels._row_shingles): word n for word rows, character n for CJK rows,
    and whether word rows get every k-gram up to n, each counted k times (weighted)."""

    word_n: int
    char_n: int
    weighted: bool = False


@dataclass
class Shingles:
    """Shingle ids of many rows: row i owns values[offsets[i]:offsets[i + 1]] (at least one each)."""

    values: np.ndarray  # uint64, < 2**48
    offsets: np.ndarray  # int64, len = rows + 1

    @property
    def rows(self) -> int:
        return len(self.offsets) - 1

    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i]:self.offsets[i + 1]]


# Characters NFKC leaves alone or that tokenising drops anyway (ASCII, CJK ideographs, kana, hangul
# syllables, general and CJK punctuation, full-width punctuation): a row with nothing else skips NFKC,
# and its only case is ASCII, which the kernels fold.
_NFKC_NEUTRAL = (r"[^\x00-\x7f\u2000-\u206f\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                 r"\uac00-\ud7af\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")


def prepare(texts: pl.Series | list[str]) -> pl.Series:
    """The form tokens start from: NFKC (full-width -> ASCII, compatibility forms folded) and lower case,
    applied only to rows with a character outside _NFKC_NEUTRAL (the slow steps; ASCII case is folded later)."""
    series = texts if isinstance(texts, pl.Series) else pl.Series("t", texts, dtype=pl.Utf8)
    series = series.cast(pl.Utf8).fill_null("")
    needs = np.nonzero(series.str.contains(_NFKC_NEUTRAL).to_numpy())[0]
    if len(needs):
        series = series.scatter(needs, series.gather(needs).str.normalize("NFKC").str.to_lowercase())
    return series


def kernel_input(texts: pl.Series | list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the kernels read: (UTF-8 bytes, row offsets, character classes)."""
    data, offsets = utf8_buffers(prepare(texts))
    return data, offsets, kernels.char_classes()


def positions(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Flat indices of the segments [starts[i], starts[i] + sizes[i]), concatenated."""
    within = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(offsets_of(sizes)[:-1], sizes)
    return np.repeat(starts, sizes) + within


def offsets_of(lens: np.ndarray) -> np.ndarray:
    """Row offsets (length rows + 1) from per-row sizes."""
    starts = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=starts[1:])
    return starts


SHINGLE_BLOCK = 100_000  # rows tokenised at once: bounds the transient memory of tokenising


def shingle(texts: pl.Series | list[str], spec: Shingling) -> Shingles:
    """Shingle ids per row, distinct within the row, in blocks of SHINGLE_BLOCK rows."""
    series = texts if isinstance(texts, pl.Series) else pl.Series("t", texts, dtype=pl.Utf8)
    parts = []
    for r0 in range(0, max(len(series), 1), SHINGLE_BLOCK):
        data, offsets, classes = kernel_input(series.slice(r0, SHINGLE_BLOCK))
        chars, shingles = kernels.scratch_sizes(offsets, spec.word_n, spec.weighted)
        values, row_offsets, _ = kernels.shingle_rows(data, offsets, classes, spec.word_n, spec.char_n,
                                                      spec.weighted, chars, shingles, kernels.set_size(shingles))
        parts.append(Shingles(values, row_offsets))
    if len(parts) == 1:
        return parts[0]
    # one array for all blocks, each block freed once copied: a concatenate would hold every id twice at its peak
    values = np.empty(sum(len(p.values) for p in parts), dtype=np.uint64)
    sizes = np.concatenate([p.sizes() for p in parts])
    at = 0
    while parts:
        block = parts.pop(0).values
        values[at:at + len(block)] = block
        at += len(block)
    return Shingles(values, offsets_of(sizes))


def subset(sh: Shingles, rows: np.ndarray) -> Shingles:
    """The shingles of `rows` only, in that order."""
    sizes = sh.sizes()[rows]
    return Shingles(sh.values[positions(sh.offsets[rows], sizes)], offsets_of(sizes))


def unique_per_row(sh: Shingles) -> Shingles:
    """Each row's shingles with repeats dropped (what jaccard and decontamination expect)."""
    return Shingles(*kernels.unique_rows(sh.values, sh.offsets, kernels.set_size(int(sh.sizes().max(initial=1)))))
