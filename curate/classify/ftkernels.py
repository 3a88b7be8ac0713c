"""Compiled per-row loops of the fastText scorer (numba): normalised UTF-8 text -> per-row sums of logits.

Why compiled: fastText's cost is per token (split, hash, look up, n-grams, word bigrams), and a Python or
numpy step per token kind (regex lists, string joins, unique/join, one call into fastText per new token) ran
at 12-33k records/s. One loop per row does every step while the row is in cache and releases the GIL.

What the loop reproduces (fastText's Dictionary::getLine / addSubwords / computeSubwords / addWordNgrams):
tokens are split by the character classes of features.TOKEN; a token's FNV-1a hash (bytes sign-extended as
int8) finds it in the vocabulary (compared byte for byte, as fastText does); a known word adds its row and its
character n-grams' rows (precomputed per word in ``word_table``), an unknown one its n-grams' rows; "</s>" ends
every line; each run of ``word_ngrams`` hashes adds a hashed bucket row; pruned models map buckets through
their kept-bucket table and skip dropped ones. Rows are pre-multiplied by the output matrix, so a row's sum is
its logits times its feature count (fastText averages the input rows, then multiplies: the same linear map).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from curate.classify.features import C_SPACE, C_WORD

_OFFSET = np.uint64(2166136261)
_PRIME = np.uint64(16777619)
_LOW32 = np.uint64(0xFFFFFFFF)
_HIGH32 = np.uint64(0xFFFFFFFF00000000)
_SIGN_BITS = np.uint64(0xFFFFFF00)
_INT32_SIGN = np.uint64(0x80000000)
_NGRAM_MULT = np.uint64(116049371)
_LABEL = np.frombuffer(b"__label__", dtype=np.uint8)
_CACHE_SLOTS = 1 << 16  # unknown-token cache of score_rows: slots (a power of two), half of them usable


@njit(cache=True, inline="always")
def _step(h, byte):
    """One FNV-1a step; fastText XORs the byte as a sign-extended int8 (uint32 arithmetic)."""
    x = np.uint64(byte)
    if byte >= 0x80:
        x = x | _SIGN_BITS
    return ((h ^ x) * _PRIME) & _LOW32


@njit(cache=True, inline="always")
def _hash(data, start, end):
    h = _OFFSET
    for i in range(start, end):
        h = _step(h, data[i])
    return h


@njit(cache=True, inline="always")
def _decode(data, i):
    """(code point, byte length) of the UTF-8 character at data[i] (Arrow strings are valid UTF-8)."""
    b = np.int64(data[i])
    if b < 0x80:
        return b, 1
    if b < 0xE0:
        return ((b & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), 2
    if b < 0xF0:
        return ((b & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F), 3
    return (((b & 0x07) << 18) | ((np.int64(data[i + 1]) & 0x3F) << 12)
            | ((np.int64(data[i + 2]) & 0x3F) << 6) | (np.int64(data[i + 3]) & 0x3F)), 4


@njit(cache=True, inline="always")
def _bucket_row(h, bucket, bucket_rows, pruned, nwords):
    """Input row of hash ``h``'s bucket, or -1 (Dictionary::pushHash)."""
    b = np.int64(h % np.uint64(bucket))
    if pruned:
        return bucket_rows[b]
    return nwords + b


@njit(cache=True, inline="always")
def _add_row(acc, table, row):
    for j in range(acc.shape[0]):
        acc[j] += table[row, j]


@njit(cache=True)
def _add_subwords(data, start, end, minn, maxn, bucket, bucket_rows, pruned, nwords, proj, acc, starts):
    """Add the rows of the character n-grams (minn..maxn characters) of "<token>"; return how many were added."""
    size = end - start
    n = 1
    starts[0] = 0  # "<" is virtual byte 0, the token's bytes are 1..size, ">" is size + 1
    for p in range(size):
        if (data[start + p] & 0xC0) != 0x80:
            starts[n] = p + 1
            n += 1
    starts[n] = size + 1
    n += 1
    starts[n] = size + 2
    added = 0
    for s in range(n):
        h = _OFFSET
        for m in range(1, maxn + 1):
            e = s + m
            if e > n:
                break
            for q in range(starts[e - 1], starts[e]):
                if q == 0:
                    h = _step(h, 0x3C)
                elif q == size + 1:
                    h = _step(h, 0x3E)
                else:
                    h = _step(h, data[start + q - 1])
            if m >= minn and not (m == 1 and (s == 0 or e == n)):
                row = _bucket_row(h, bucket, bucket_rows, pruned, nwords)
                if row >= 0:
                    _add_row(acc, proj, row)
                    added += 1
    return added


@njit(cache=True)
def _find(data, start, end, h, slots, word_hash, word_bytes, word_offsets):
    """Vocabulary id of the token data[start:end] with hash ``h`` (open addressing, linear probing), or -1."""
    mask = len(slots) - 1
    i = np.int64(h) & mask
    size = end - start
    while True:
        w = slots[i]
        if w < 0:
            return -1
        if word_hash[w] == h and word_offsets[w + 1] - word_offsets[w] == size:
            a = word_offsets[w]
            same = True
            for k in range(size):
                if word_bytes[a + k] != data[start + k]:
                    same = False
                    break
            if same:
                return w
        i = (i + 1) & mask


@njit(cache=True)
def vocabulary(word_bytes, word_offsets, slots):
    """Fill the lookup table ``slots`` (size a power of two, -1 = empty); return every word's hash."""
    nw = len(word_offsets) - 1
    hashes = np.empty(nw, dtype=np.uint64)
    mask = len(slots) - 1
    for w in range(nw):
        h = _hash(word_bytes, word_offsets[w], word_offsets[w + 1])
        hashes[w] = h
        i = np.int64(h) & mask
        while slots[i] >= 0:
            i = (i + 1) & mask
        slots[i] = w
    return hashes


@njit(cache=True)
def word_table(word_bytes, word_offsets, eos, minn, maxn, bucket, bucket_rows, pruned, proj, out, counts):
    """Per vocabulary word: the sum of its rows (word row and, except "</s>", its n-grams) and their count."""
    nw = len(word_offsets) - 1
    longest = 0
    for w in range(nw):
        longest = max(longest, word_offsets[w + 1] - word_offsets[w])
    starts = np.empty(longest + 3, dtype=np.int64)
    for w in range(nw):
        acc = out[w]
        _add_row(acc, proj, w)
        counts[w] = 1
        if maxn > 0 and w != eos:
            counts[w] += _add_subwords(word_bytes, word_offsets[w], word_offsets[w + 1], minn, maxn, bucket,
                                       bucket_rows, pruned, nw, proj, acc, starts)


@njit(cache=True, inline="always")
def _is_skipped(data, start, end):
    """Tokens fastText never reads as words: NUL (whitespace to fastText) and "__label__..." (a label)."""
    if end - start == 1 and data[start] == 0:
        return True
    if end - start < len(_LABEL):
        return False
    for k in range(len(_LABEL)):
        if data[start + k] != _LABEL[k]:
            return False
    return True


@njit(cache=True, inline="always")
def _same_bytes(data, a, b, size):
    for k in range(size):
        if data[a + k] != data[b + k]:
            return False
    return True


@njit(cache=True, nogil=True)
def score_rows(data, offsets, classes, slots, word_hash, word_bytes, word_offsets, wsum, wcount, eos, eos_hash,
               proj, bucket_rows, pruned, bucket, minn, maxn, word_ngrams, out, counts):
    """Row r of ``out``: the sum of the projected rows of row r's features; ``counts[r]``: how many.

    Unknown tokens repeat (names, rare words), so their n-gram sums are cached for the call: a table keyed by
    hash and bytes (the first occurrence in ``data``), full at half its slots, after which they are recomputed.
    """
    nrows = len(offsets) - 1
    nwords = len(word_offsets) - 1
    width = out.shape[1]
    longest = 0
    for r in range(nrows):
        longest = max(longest, offsets[r + 1] - offsets[r])
    starts = np.empty(longest + 3, dtype=np.int64)
    hashes = np.empty(longest + 1, dtype=np.uint64)
    cache_slots = np.full(_CACHE_SLOTS, -1, dtype=np.int64)
    cache_start = np.empty(_CACHE_SLOTS // 2, dtype=np.int64)
    cache_size = np.empty(_CACHE_SLOTS // 2, dtype=np.int64)
    cache_hash = np.empty(_CACHE_SLOTS // 2, dtype=np.uint64)
    cache_count = np.empty(_CACHE_SLOTS // 2, dtype=np.int64)
    cache_sum = np.zeros((_CACHE_SLOTS // 2 if maxn > 0 else 0, width), dtype=np.float32)
    cached = 0
    mask = _CACHE_SLOTS - 1
    tmp = np.zeros(width, dtype=np.float32)
    for r in range(nrows):
        acc = out[r]
        added = 0
        nh = 0
        i, end = offsets[r], offsets[r + 1]
        while i <= end:
            if i == end:  # every line ends with "</s>"
                if eos >= 0:
                    _add_row(acc, wsum, eos)
                    added += wcount[eos]
                hashes[nh] = eos_hash
                nh += 1
                break
            cp, k = _decode(data, i)
            cls = classes[cp]
            if cls == C_SPACE:
                i += k
                continue
            start = i
            i += k
            if cls == C_WORD:
                while i < end:
                    cp, k = _decode(data, i)
                    if classes[cp] != C_WORD:
                        break
                    i += k
            if _is_skipped(data, start, i):
                continue
            h = _hash(data, start, i)
            hashes[nh] = h
            nh += 1
            w = _find(data, start, i, h, slots, word_hash, word_bytes, word_offsets)
            if w >= 0:
                _add_row(acc, wsum, w)
                added += wcount[w]
                continue
            if maxn <= 0:
                continue
            slot = np.int64(h) & mask
            hit = -1
            while cache_slots[slot] >= 0:
                e = cache_slots[slot]
                if cache_hash[e] == h and cache_size[e] == i - start and _same_bytes(data, cache_start[e], start,
                                                                                      i - start):
                    hit = e
                    break
                slot = (slot + 1) & mask
            if hit >= 0:
                _add_row(acc, cache_sum, hit)
                added += cache_count[hit]
                continue
            tmp[:] = 0.0
            n_sub = _add_subwords(data, start, i, minn, maxn, bucket, bucket_rows, pruned, nwords, proj, tmp, starts)
            for j in range(width):
                acc[j] += tmp[j]
            added += n_sub
            if cached < _CACHE_SLOTS // 2:
                cache_slots[slot] = cached
                cache_start[cached], cache_size[cached], cache_hash[cached] = start, i - start, h
                cache_count[cached] = n_sub
                cache_sum[cached] = tmp
                cached += 1
        if bucket > 0:
            for a in range(nh):  # word n-grams: fastText keeps hashes as int32 and chains them in uint64
                g = hashes[a] | _HIGH32 if hashes[a] >= _INT32_SIGN else hashes[a]
                for b in range(a + 1, min(nh, a + word_ngrams)):
                    x = hashes[b] | _HIGH32 if hashes[b] >= _INT32_SIGN else hashes[b]
                    g = g * _NGRAM_MULT + x
                    row = _bucket_row(g, bucket, bucket_rows, pruned, nwords)
                    if row >= 0:
                        _add_row(acc, proj, row)
                        added += 1
        counts[r] = added


@njit(cache=True)
def word_hash_of(data):
    """fastText's hash of one token's UTF-8 bytes."""
    return _hash(data, 0, len(data))
