"""Compiled per-row loops of dedup (numba): UTF-8 text -> tokens -> shingles -> one-permutation MinHash.

Why compiled: tokenising, shingling and hashing every character of every row is the whole cost of dedup.
Vectorised numpy/polars needed one full pass over all characters per step (regex, code points, hashes,
rolling windows, 128 permutations) and ran at 16k Chinese prompts/s; one loop per row does every step
while the row is in cache.

Tokens: a row whose word characters are mostly CJK (at least as many CJK characters as other words) is
read as characters (every letter, mark or digit is a token); any other row as words (runs of letters,
marks and digits; a CJK character inside is a token of its own). Punctuation, symbols and spacing never
count. ASCII upper case is folded here; other case and width folding is done before (shingles.prepare).

Signatures: one-permutation hashing (Li, Owen & Zhang 2012) with optimal densification (Shrivastava 2017):
each shingle is hashed once into one of K = bands x rows bins, a bin keeps its minimum, and an empty bin
copies the bin that a fixed probe sequence (the same for every row) reaches first. Two rows' bins collide
with probability equal to their Jaccard similarity, as with K independent permutations, at 1/K of the cost.

The entry points release the GIL, so threads run them in parallel (signatures.compute).
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np
from numba import njit

from curate.utf8 import decode_at

OTHER, WORD, CJK = 0, 1, 2
_CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xAC00, 0xD7AF))

SHINGLE_BITS = 48  # shingle ids stay below 2**48, so the hash sets' free-slot marker is never an id
SHINGLE_MASK = np.uint64((1 << SHINGLE_BITS) - 1)
_MUL = np.uint64(0x9E3779B97F4A7C15)
_SHORT = np.uint64(0x9E6C63D0676A9A99)  # tags the one shingle of a row shorter than its n-gram
_EMPTY = np.uint64(0xDEADBEEF)  # tags the key of a row without any token
_LO32 = np.uint64(0xFFFFFFFF)


# Planes 4-13 hold no assigned character and planes 15-16 only private use (category Co), so only planes
# 0-3 and 14 need looking up: a fifth of the calls, the same table.
_PLANES_WITH_WORDS = (0, 1, 2, 3, 14)


@lru_cache(maxsize=1)
def char_classes() -> np.ndarray:
    """Class of every code point: WORD (Unicode letters, marks, numbers), CJK (those in the CJK ranges), OTHER."""
    word = np.zeros(0x110000, dtype=bool)
    for plane in _PLANES_WITH_WORDS:
        lo = plane << 16
        word[lo:lo + 0x10000] = np.fromiter((unicodedata.category(chr(c))[0] in "LMN" for c in range(lo, lo + 0x10000)),
                                            dtype=bool, count=0x10000)
    classes = word.astype(np.uint8) * WORD
    for lo, hi in _CJK_RANGES:
        classes[lo:hi + 1] = np.where(word[lo:hi + 1], CJK, OTHER)
    return classes


@njit(cache=True, inline="always")
def _mix(x):
    """splitmix64 finaliser."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def _decode(data, start, end, points):
    """UTF-8 bytes [start, end) -> code points (Arrow strings are valid UTF-8); ASCII upper case folded."""
    i, k = start, 0
    while i < end:
        cp, size = decode_at(data, i)
        if 65 <= cp <= 90:
            cp += 32
        points[k] = cp
        i += size
        k += 1
    return k


@njit(cache=True)
def _sequence_key(values, n):
    """64-bit key of an ordered sequence of hashes."""
    h = np.uint64(n)
    for i in range(n):
        h = h * _MUL + values[i]
    return _mix(h ^ np.uint64(n))


@njit(cache=True)
def _tokens(data, start, end, classes, points, tokens):
    """Token hashes of one row into `tokens`; returns (count, row read as CJK characters)."""
    n = _decode(data, start, end, points)
    cjk_chars, words, prev = 0, 0, OTHER
    for i in range(n):
        c = classes[points[i]]
        if c == CJK:
            cjk_chars += 1
        elif c == WORD and prev != WORD:
            words += 1
        prev = c
    by_char = cjk_chars > 0 and cjk_chars >= words
    count, h, length = 0, np.uint64(0), 0
    for i in range(n + 1):
        c = classes[points[i]] if i < n else OTHER
        if c == WORD and not by_char:  # inside a word: extend its hash
            h = h * _MUL + np.uint64(points[i]) + np.uint64(1)
            length += 1
            continue
        if length:  # a word just ended
            tokens[count] = _mix(h ^ np.uint64(length))
            count += 1
            h, length = np.uint64(0), 0
        if c != OTHER:  # a character token: a CJK character, or any word character of a CJK row
            tokens[count] = _mix((np.uint64(points[i]) + np.uint64(1)) ^ np.uint64(1))  # = a one-letter word
            count += 1
    return count, by_char


@njit(cache=True)
def _row_shingles(data, start, end, classes, word_n, char_n, weighted, points, tokens, out):
    """Shingle ids of one row into `out` (repeats kept); returns (count, exact key of the row).

    Character rows get character n-grams. Word rows get word n-grams, or with `weighted` every word
    k-gram for k = 1..n, a k-gram counted k times (k tagged copies), so the set Jaccard of two rows is a
    weighted Jaccard in which single words count as well as their order. A row with fewer tokens than its
    n gets one shingle of all its tokens (weighted: the k-grams it has), a row without tokens one shingle
    of its whole text, so short rows keep signatures of their own.
    """
    count, by_char = _tokens(data, start, end, classes, points, tokens)
    if count == 0:
        h = np.uint64(end - start)
        for i in range(start, end):
            h = h * _MUL + np.uint64(data[i]) + np.uint64(1)
        key = _mix(h ^ _EMPTY)
        out[0] = _mix(key ^ _SHORT) & SHINGLE_MASK
        return 1, key
    key = _sequence_key(tokens, count)
    if weighted and not by_char:
        m = 0
        for k in range(1, min(word_n, count) + 1):
            for i in range(count - k + 1):
                s = tokens[i]
                for j in range(1, k):
                    s = s * _MUL + tokens[i + j]
                for copy in range(k):
                    out[m] = _mix(s ^ (np.uint64(k) << np.uint64(56)) ^ (np.uint64(copy) << np.uint64(48))) & SHINGLE_MASK
                    m += 1
        return m, key
    n = char_n if by_char else word_n
    if count < n:
        out[0] = _mix(key ^ _SHORT) & SHINGLE_MASK
        return 1, key
    for i in range(count - n + 1):
        s = tokens[i]
        for j in range(1, n):
            s = s * _MUL + tokens[i + j]
        out[i] = _mix(s) & SHINGLE_MASK
    return count - n + 1, key


def scratch_sizes(offsets: np.ndarray, word_n: int, weighted: bool) -> tuple[int, int]:
    """Per-row buffer lengths the kernels need: (characters, shingles). A row has at most as many
    characters and tokens as bytes, and a weighted word row n(n+1)/2 shingles per token."""
    chars = int(np.diff(offsets).max(initial=0)) + 2
    return chars, chars * (word_n * (word_n + 1) // 2 if weighted else 1)


_FREE = np.uint64(0xFFFFFFFFFFFFFFFF)  # an empty hash-set slot (shingle ids are below 2**48)


def set_size(count: int) -> int:
    """Hash-set slots for up to `count` shingles: a power of two at least twice as large."""
    return 1 << max(4, int(2 * max(count, 1) - 1).bit_length())


@njit(cache=True, inline="always")
def _table_for(count, table):
    size = 16
    while size < 2 * count:
        size *= 2
    table[:size] = _FREE
    return size - 1


@njit(cache=True, inline="always")
def _seen(table, mask, value, add):
    """Whether value is in the open-addressing set; with `add`, put it there if not. Ids are mixed hashes,
    so their low bits pick the slot."""
    slot = np.int64(value & np.uint64(mask))
    while True:
        held = table[slot]
        if held == value:
            return True
        if held == _FREE:
            if add:
                table[slot] = value
            return False
        slot = (slot + 1) & mask


@njit(cache=True)
def _unique(seg, table):
    """Move seg's distinct values to its front, first occurrences in order; returns how many there are."""
    mask = _table_for(len(seg), table)
    k = 0
    for i in range(len(seg)):
        if not _seen(table, mask, seg[i], True):
            seg[k] = seg[i]
            k += 1
    return k


@njit(cache=True, nogil=True)
def shingle_rows(data, offsets, classes, word_n, char_n, weighted, scratch, shingle_scratch, table_size):
    """(flat shingle ids, row offsets, exact key per row) of all rows; each row's ids distinct."""
    rows = len(offsets) - 1
    points = np.empty(scratch, dtype=np.uint32)
    tokens = np.empty(scratch, dtype=np.uint64)
    table = np.empty(table_size, dtype=np.uint64)
    values = np.empty(max(16, (offsets[rows] - offsets[0]) // 2), dtype=np.uint64)
    out_offsets = np.zeros(rows + 1, dtype=np.int64)
    keys = np.empty(rows, dtype=np.uint64)
    pos = 0
    for r in range(rows):
        if pos + shingle_scratch > len(values):  # grow: a row adds at most `shingle_scratch` shingles
            grown = np.empty(2 * len(values) + shingle_scratch, dtype=np.uint64)
            grown[:pos] = values[:pos]
            values = grown
        count, keys[r] = _row_shingles(data, offsets[r], offsets[r + 1], classes, word_n, char_n, weighted,
                                       points, tokens, values[pos:])
        pos += _unique(values[pos:pos + count], table)
        out_offsets[r + 1] = pos
    return values[:pos].copy(), out_offsets, keys


@njit(cache=True, nogil=True)
def unique_rows(values, offsets, table_size):
    """Each row's shingle ids made distinct: (values, offsets) of the result."""
    out = values.copy()
    table = np.empty(table_size, dtype=np.uint64)
    out_offsets = np.zeros(len(offsets), dtype=np.int64)
    pos = 0
    for r in range(len(offsets) - 1):
        count = offsets[r + 1] - offsets[r]
        out[pos:pos + count] = values[offsets[r]:offsets[r + 1]]
        pos += _unique(out[pos:pos + count], table)
        out_offsets[r + 1] = pos
    return out[:pos].copy(), out_offsets


@njit(cache=True, nogil=True)
def pair_jaccard(values, offsets, pairs, table_size):
    """Jaccard similarity of each pair of rows (rows' ids distinct). Pairs sorted by their first row
    reuse its hash set."""
    out = np.empty(len(pairs), dtype=np.float64)
    table = np.empty(table_size, dtype=np.uint64)
    mask, current = 0, -1
    for p in range(len(pairs)):
        a, b = pairs[p, 0], pairs[p, 1]
        if a != current:
            mask = _table_for(offsets[a + 1] - offsets[a], table)
            for i in range(offsets[a], offsets[a + 1]):
                _seen(table, mask, values[i], True)
            current = a
        shared = 0
        for i in range(offsets[b], offsets[b + 1]):
            if _seen(table, mask, values[i], False):
                shared += 1
        union = (offsets[a + 1] - offsets[a]) + (offsets[b + 1] - offsets[b]) - shared
        out[p] = shared / max(union, 1)
    return out


@njit(cache=True, inline="always")
def _bin(h, bins):
    return np.int64(((h >> np.uint64(32)) * np.uint64(bins)) >> np.uint64(32))


@njit(cache=True)
def _signature(shingles, count, bins, seed, sig, filled, dense):
    """One-permutation MinHash of one row's shingles into `dense` (length bins), densified."""
    salt = _mix(np.uint64(seed) * _MUL)
    sig[:] = _LO32
    filled[:] = False
    for i in range(count):
        h = _mix(shingles[i] ^ salt)
        b = _bin(h, bins)
        v = h & _LO32
        if v < sig[b]:
            sig[b] = v
        filled[b] = True
    for j in range(bins):
        if filled[j]:
            dense[j] = sig[j]
            continue
        attempt = np.uint64(0)  # probe bins in an order fixed by (bin, attempt) only: the same in every row
        while True:
            attempt += np.uint64(1)
            src = _bin(_mix((np.uint64(j) << np.uint64(32)) ^ attempt ^ salt), bins)
            if filled[src]:
                dense[j] = sig[src]
                break


@njit(cache=True, inline="always")
def _band_keys(dense, bands, rows_per_band, out, r):
    for b in range(bands):
        h = np.uint64(b)
        for j in range(b * rows_per_band, (b + 1) * rows_per_band):
            h = h * _MUL + dense[j]
        out[b, r] = _mix(h)


@njit(cache=True, nogil=True)
def signature_rows(data, offsets, classes, word_n, char_n, weighted, bands, rows_per_band, seed, scratch,
                   shingle_scratch):
    """(exact key per row, LSH band keys [bands, rows]) of texts, without keeping any shingle."""
    rows = len(offsets) - 1
    bins = bands * rows_per_band
    points = np.empty(scratch, dtype=np.uint32)
    tokens = np.empty(scratch, dtype=np.uint64)
    shingles = np.empty(shingle_scratch, dtype=np.uint64)
    sig, dense, filled = np.empty(bins, np.uint64), np.empty(bins, np.uint64), np.empty(bins, np.bool_)
    keys = np.empty(rows, dtype=np.uint64)
    band_keys = np.empty((bands, rows), dtype=np.uint64)
    for r in range(rows):
        count, keys[r] = _row_shingles(data, offsets[r], offsets[r + 1], classes, word_n, char_n, weighted,
                                       points, tokens, shingles)
        _signature(shingles, count, bins, seed, sig, filled, dense)
        _band_keys(dense, bands, rows_per_band, band_keys, r)
    return keys, band_keys


@njit(cache=True, nogil=True)
def shingle_signatures(values, offsets, bands, rows_per_band, seed):
    """LSH band keys [bands, rows] of rows given as shingle ids."""
    rows = len(offsets) - 1
    bins = bands * rows_per_band
    sig, dense, filled = np.empty(bins, np.uint64), np.empty(bins, np.uint64), np.empty(bins, np.bool_)
    band_keys = np.empty((bands, rows), dtype=np.uint64)
    for r in range(rows):
        _signature(values[offsets[r]:offsets[r + 1]], offsets[r + 1] - offsets[r], bins, seed, sig, filled, dense)
        _band_keys(dense, bands, rows_per_band, band_keys, r)
    return band_keys
