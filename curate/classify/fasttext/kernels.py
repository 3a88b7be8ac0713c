"""Compiled per-row loops of the fastText scorer (numba): normalised UTF-8 text -> per-row sums of logits.

Why compiled: fastText's cost is per token (split, hash, look up, n-grams, word bigrams), and a Python or
numpy step per token kind (regex lists, string joins, unique/join, one call into fastText per new token) ran
at 12-33k records/s. One loop per row does every step while the row is in cache and releases the GIL.

What the loop reproduces (fastText's Dictionary::getLine / addSubwords / computeSubwords / addWordNgrams):
tokens are split by the character classes of tokens.TOKEN; a token's FNV-1a hash (bytes sign-extended as
int8) finds it in the vocabulary (compared byte for byte, as fastText does); a known word adds its row and its
character n-grams' rows (precomputed per word in ``word_table``), an unknown one its n-grams' rows; "</s>" ends
every line; each run of ``word_ngrams`` hashes adds a hashed bucket row; pruned models map buckets through
their kept-bucket table and skip dropped ones. Rows are pre-multiplied by the output matrix, so a row's sum is
its logits times its feature count (fastText averages the input rows, then multiplies: the same linear map).
"""
from __future__ import annotations

import numpy as np
from numba import njit

# numba freezes these into its on-disk cache, which only notices edits to this file: changing their values
# in tokens.py needs a touch here
from curate.classify.fasttext.tokens import C_DIGIT, C_SPACE, C_WORD
from curate.utf8 import decode_at

_OFFSET = np.uint64(2166136261)
_PRIME = np.uint64(16777619)
_LOW32 = np.uint64(0xFFFFFFFF)
_HIGH32 = np.uint64(0xFFFFFFFF00000000)
_SIGN_BITS = np.uint64(0xFFFFFF00)
_INT32_SIGN = np.uint64(0x80000000)
_NGRAM_MULT = np.uint64(116049371)
_LABEL = np.frombuffer(b"__label__", dtype=np.uint8)
_CACHE_SLOTS = 1 << 16  # unknown-token cache of score_rows: slots (a power of two), half of them usable
_CACHE_BYTES = 1 << 20  # and the bytes of its keys


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


@njit(cache=True, inline="always")
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
def _same_bytes(x, a, y, b, size):
    for k in range(size):
        if x[a + k] != y[b + k]:
            return False
    return True


@njit(cache=True, inline="always")
def _put_utf8(buf, n, cp):
    """Append code point ``cp`` to buf[n:] as UTF-8; return the new length."""
    if cp < 0x80:
        buf[n] = cp
        return n + 1
    if cp < 0x800:
        buf[n], buf[n + 1] = 0xC0 | (cp >> 6), 0x80 | (cp & 0x3F)
        return n + 2
    if cp < 0x10000:
        buf[n], buf[n + 1], buf[n + 2] = 0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)
        return n + 3
    buf[n], buf[n + 1] = 0xF0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3F)
    buf[n + 2], buf[n + 3] = 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)
    return n + 4


@njit(cache=True, inline="always")
def _finish(acc, added, ova, n_labels, sigmoid):
    """Sums -> fastText's probabilities in place: mean, then its table sigmoid (one-vs-all) or softmax; a line
    without any known feature gets zeros (fastText predicts nothing for it), as does one that met a NaN weight.
    float32 steps, as fastText."""
    if added == 0:
        acc[:] = 0.0
        return
    for j in range(n_labels):
        if np.isnan(acc[j]):  # weights of a diverged model: no prediction rather than garbage
            acc[:] = 0.0
            return
    n = np.float32(added)
    for j in range(n_labels):
        acc[j] = acc[j] / n
    if ova:
        for j in range(n_labels):
            x = acc[j]
            if x < np.float32(-8.0):
                acc[j] = 0.0
            elif x > np.float32(8.0):
                acc[j] = 1.0
            else:
                acc[j] = sigmoid[np.int64((x + np.float32(8.0)) * np.float32(512.0) / np.float32(8.0)
                                          / np.float32(2.0))]
    else:
        top = acc[0]
        for j in range(1, n_labels):
            top = max(top, acc[j])
        z = np.float32(0.0)
        for j in range(n_labels):
            acc[j] = np.exp(acc[j] - top)
            z += acc[j]
        for j in range(n_labels):
            acc[j] = acc[j] / z


@njit(cache=True, nogil=True)
def score_rows(data, offsets, text, model, scalars, sigmoid, out, status):
    """fastText's probabilities for each row of raw UTF-8 text, into ``out`` (rows x padded labels).

    ``text`` says how to read it: (lower, classes, max_chars, lowering). With ``lowering`` the loop does what
    tokens.normalise does (first max_chars characters, lowercase, each digit run as one 0) while it splits;
    a row with a character whose lowercase depends on its neighbours or is longer (``lower`` = -1) is left
    for polars (``status`` = 1) and comes back already normalised, read with ``lowering`` off.

    Unknown tokens repeat (names, rare words), so their n-gram sums are cached for the call: a table keyed by
    hash and bytes, full at half its slots or when its byte pool is full; after that they are recomputed.
    (Everything per token is written out in this loop: a helper taking the model's arrays would pay numba's
    reference counting on each of them for every token.)"""
    lower, classes, max_chars, lowering = text
    eos, eos_hash, pruned, bucket, minn, maxn, word_ngrams, ova, n_labels = scalars
    slots, word_hash, word_bytes, word_offsets, wsum, wcount, proj, bucket_rows = model
    nrows = len(offsets) - 1
    nwords = len(word_offsets) - 1
    longest = 0
    for r in range(nrows):
        longest = max(longest, offsets[r + 1] - offsets[r])
    tok = np.empty(4 * longest + 8, dtype=np.uint8)  # a token's bytes after lowercasing (at most 4 per char)
    starts = np.empty(4 * longest + 8, dtype=np.int64)
    hashes = np.empty(longest + 1, dtype=np.uint64)
    width = out.shape[1]
    half = _CACHE_SLOTS // 2
    mask = _CACHE_SLOTS - 1
    cache_slots = np.full(_CACHE_SLOTS, -1, dtype=np.int64)
    cache_start = np.empty(half, dtype=np.int64)
    cache_size = np.empty(half, dtype=np.int64)
    cache_hash = np.empty(half, dtype=np.uint64)
    cache_count = np.empty(half, dtype=np.int64)
    cache_sum = np.zeros((half if maxn > 0 else 0, width), dtype=np.float32)
    cache_bytes = np.empty(_CACHE_BYTES if maxn > 0 else 0, dtype=np.uint8)
    cached, pool = 0, 0
    tmp = np.zeros(width, dtype=np.float32)
    for r in range(nrows):
        acc = out[r]
        added = 0
        nh = 0
        digits = False  # the last character taken was a digit (a run of them is written once, as 0)
        chars = 0
        i, end = offsets[r], offsets[r + 1]
        while True:
            # the next token into tok[:size]: a run of word characters, or one Han character or symbol
            size = 0
            while i < end and chars < max_chars:
                cp, k = decode_at(data, i)
                if lowering:
                    low, cls = lower[cp], classes[cp]
                    if low < 0:
                        status[r] = 1
                        break
                else:
                    low, cls = cp, classes[cp]
                if cls != C_WORD and cls != C_DIGIT and size > 0 and cls != C_SPACE:
                    break  # a Han character or a symbol ends the run; it is the next token
                i += k
                chars += 1
                if cls == C_DIGIT:
                    if digits:
                        continue
                    digits, low = True, 0x30
                else:
                    digits = False
                if cls == C_SPACE:
                    if size > 0:
                        break
                    continue
                if low == cp:
                    for q in range(k):
                        tok[size + q] = data[i - k + q]
                    size += k
                else:
                    size = _put_utf8(tok, size, low)
                if cls != C_WORD and cls != C_DIGIT:
                    break
            if status[r] or size == 0:
                break
            if _is_skipped(tok, 0, size):  # fastText never reads these as words
                continue
            h = _hash(tok, 0, size)
            hashes[nh] = h
            nh += 1
            w = _find(tok, 0, size, h, slots, word_hash, word_bytes, word_offsets)
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
                if cache_hash[e] == h and cache_size[e] == size and _same_bytes(cache_bytes, cache_start[e], tok, 0,
                                                                                 size):
                    hit = e
                    break
                slot = (slot + 1) & mask
            if hit >= 0:
                _add_row(acc, cache_sum, hit)
                added += cache_count[hit]
                continue
            tmp[:] = 0.0
            n_sub = _add_subwords(tok, 0, size, minn, maxn, bucket, bucket_rows, pruned, nwords, proj, tmp, starts)
            for j in range(width):
                acc[j] += tmp[j]
            added += n_sub
            if cached < half and pool + size <= len(cache_bytes):
                cache_bytes[pool:pool + size] = tok[:size]
                cache_slots[slot] = cached
                cache_start[cached], cache_size[cached], cache_hash[cached] = pool, size, h
                cache_count[cached] = n_sub
                cache_sum[cached] = tmp
                cached += 1
                pool += size
        if status[r]:
            acc[:] = 0.0
            continue
        if eos >= 0:  # every line ends with "</s>"
            _add_row(acc, wsum, eos)
            added += wcount[eos]
        hashes[nh] = eos_hash
        nh += 1
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
        _finish(acc, added, ova, n_labels, sigmoid)


@njit(cache=True)
def word_hash_of(data):
    """fastText's hash of one token's UTF-8 bytes."""
    return _hash(data, 0, len(data))
