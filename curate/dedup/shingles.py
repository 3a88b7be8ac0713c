"""Language-aware tokens, exact keys and shingles, vectorised: texts -> flat uint64 arrays + row offsets.

A row whose letters are mostly CJK (at least as many CJK characters as other words, the weighting of
text.detect_lang) is tokenised into characters (letters and digits; punctuation and spacing dropped) and
gets character n-grams. Any other row is tokenised into words (runs of letters or digits; a CJK
character inside is a word of its own) and gets word n-grams. Punctuation and spacing never count.

A row with fewer tokens than its n gets one shingle of all its tokens, and a row with no token at all
one shingle of its whole text, so short rows keep distinct signatures instead of collapsing into one
empty signature.

No per-row Python: words come from a polars regex (Rust); CJK characters are read straight from the
Arrow UTF-8 buffer (a regex match per character would be five times slower); n-grams are rolling hashes
in numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
WORD_TOKEN = f"[{_CJK}]|[^\\W_{_CJK}]+"
_CJK_CHAR = f"[{_CJK}]"
_WORD = f"[^\\W_{_CJK}]+"
_NOT_ALNUM = r"[\W_]+"

SHINGLE_BITS = 48  # room for a 16-bit row/pair index in one uint64 sort key (see unique_per_row)
_MASK = np.uint64((1 << SHINGLE_BITS) - 1)
_MUL = np.uint64(0x9E3779B97F4A7C15)


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


@dataclass
class Tokens:
    """Token hashes of many rows (row i owns hashes[starts[i]:starts[i] + lens[i]])."""

    hashes: np.ndarray  # uint64
    lens: np.ndarray  # int64 per row
    cjk: np.ndarray  # bool per row: character tokens
    whole: np.ndarray  # uint64 per row: hash of the whole prepared text (used when a row has no token)
    exact: np.ndarray  # uint64 per row: see exact_keys


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads rolling-hash bits so the top 48 are uniform."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# Characters NFKC leaves alone or that tokenising drops anyway (ASCII, CJK ideographs, kana, hangul
# syllables, general and CJK punctuation, full-width punctuation): a row with nothing else skips NFKC.
_NFKC_NEUTRAL = (r"[^\x00-\x7f\u2000-\u206f\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                 r"\uac00-\ud7af\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")


def prepare(texts: pl.Series | list[str]) -> pl.Series:
    """The form tokens start from: NFKC (full-width -> ASCII, compatibility forms folded), lower case."""
    series = texts if isinstance(texts, pl.Series) else pl.Series("t", texts, dtype=pl.Utf8)
    series = series.fill_null("")
    needs = np.nonzero(series.str.contains(_NFKC_NEUTRAL).to_numpy())[0]  # NFKC is the slow step: only where it matters
    if len(needs):
        series = series.scatter(needs, series.gather(needs).str.normalize("NFKC"))
    return series.str.to_lowercase()


def _codepoints(series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code point of every character, characters per row), via the Arrow UTF-8 buffer and Python's
    UTF-32 codec (C speed) instead of one string object per character."""
    arr = series.to_arrow()
    if str(arr.type) != "large_string":
        arr = arr.cast("large_string")
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    raw = bytes(memoryview(data_buf)[offsets[0]:offsets[-1]]) if data_buf is not None else b""
    points = np.frombuffer(raw.decode("utf-8").encode("utf-32-le"), dtype=np.uint32)
    per_row = series.str.len_chars().fill_null(0).to_numpy().astype(np.int64)
    return points, per_row


_BMP = 0x10000
_CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xAC00, 0xD7AF))  # = _CJK


@lru_cache(maxsize=1)
def _cjk_table() -> np.ndarray:
    table = np.zeros(_BMP, dtype=np.int32)
    for lo, hi in _CJK_RANGES:
        table[lo:hi + 1] = 1
    return table


def _mix_points(points: np.ndarray, seed: int) -> np.ndarray:
    return mix64(points.astype(np.uint64) ^ np.uint64(seed + 0x5BD1E995))


@lru_cache(maxsize=4)
def _bmp_hashes(seed: int) -> np.ndarray:
    """Hashes of the 65,536 BMP code points (512 KB, cache-resident): a gather instead of mixing each char."""
    return _mix_points(np.arange(_BMP, dtype=np.uint32), seed)


def _point_hashes(points: np.ndarray, seed: int) -> np.ndarray:
    hashes = _bmp_hashes(seed)[np.minimum(points, _BMP - 1)]
    astral = np.nonzero(points >= _BMP)[0]  # rare: emoji-free text has none after replace_all
    if len(astral):
        hashes[astral] = _mix_points(points[astral], seed)
    return hashes


def tokenize(prepared: pl.Series, seed: int = 0) -> Tokens:
    rows = len(prepared)
    whole = prepared.hash(seed=seed + 1).to_numpy().astype(np.uint64)
    exact = mix64(whole ^ np.uint64(0xDEADBEEF))  # rows without a token key on their whole text
    lens = np.zeros(rows, dtype=np.int64)
    cjk = np.zeros(rows, dtype=bool)
    parts: list[tuple[np.ndarray, np.ndarray]] = []  # (row indices, token hashes in row order)
    maybe = np.nonzero(prepared.str.contains(_CJK_CHAR).fill_null(False).to_numpy())[0]
    if len(maybe):  # rows with a CJK character: CJK when those outnumber the other words
        sub = prepared.gather(maybe)
        letters = sub.str.replace_all(_NOT_ALNUM, "")
        points, per_row = _codepoints(letters)  # every row here keeps at least its CJK character
        cjk_count = np.add.reduceat(_cjk_table()[np.minimum(points, _BMP - 1)], offsets_of(per_row)[:-1])
        words = sub.str.count_matches(_WORD).fill_null(0).to_numpy()
        take = cjk_count >= words
        idx = maybe[take]
        cjk[idx] = True
        if not take.all():
            points, per_row = points[np.repeat(take, per_row)], per_row[take]
        lens[idx] = per_row
        parts.append((idx, _point_hashes(points, seed)))
        # a long character sequence is cheaper to key by hashing its string than by a polynomial
        exact[idx] = mix64(letters.hash(seed=seed + 2).to_numpy().astype(np.uint64)[take] | np.uint64(1))
    if (~cjk).any():
        idx = np.nonzero(~cjk)[0]
        tokens = prepared.gather(idx).str.extract_all(WORD_TOKEN)
        lens[idx] = tokens.list.len().fill_null(0).to_numpy()
        group = tokens.explode().drop_nulls().hash(seed=seed).to_numpy().astype(np.uint64)
        parts.append((idx, group))
        has = idx[lens[idx] > 0]
        exact[has] = sequence_keys(group, lens[idx])[lens[idx] > 0]
    if len(parts) == 2:  # interleave the two groups back into row order
        starts = offsets_of(lens)
        hashes = np.empty(int(starts[-1]), dtype=np.uint64)
        for idx, group in parts:
            hashes[positions(starts[idx], lens[idx])] = group
    else:
        hashes = parts[0][1] if parts else np.zeros(0, dtype=np.uint64)
    return Tokens(hashes, lens, cjk, whole, exact)


def positions(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Flat indices of the segments [starts[i], starts[i] + sizes[i]), concatenated."""
    within = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(offsets_of(sizes)[:-1], sizes)
    return np.repeat(starts, sizes) + within


def offsets_of(lens: np.ndarray) -> np.ndarray:
    """Row offsets (length rows + 1) from per-row sizes."""
    starts = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=starts[1:])
    return starts


def sequence_keys(hashes: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash of each row's token sequence (rows without tokens get an arbitrary value)."""
    keys = np.zeros(len(lens), dtype=np.uint64)
    has = np.nonzero(lens > 0)[0]
    if len(has):
        starts = offsets_of(lens)
        powers = np.full(int(lens.max()), _MUL, dtype=np.uint64)
        powers[0] = 1
        powers = np.multiply.accumulate(powers)  # MUL**k, wrapping
        pos = np.arange(len(hashes), dtype=np.int64) - np.repeat(starts[:-1], lens)
        poly = np.add.reduceat(hashes * powers[pos], starts[has])
        keys[has] = mix64(poly ^ lens[has].astype(np.uint64))
    return keys


def exact_keys(tok: Tokens) -> np.ndarray:
    """64-bit key per row: equal for texts whose tokens are equal, i.e. that differ only in case, width,
    punctuation and spacing (and, in CJK rows, spaces between characters). A row with no token keys on
    its whole text, so "???" and "!!!" stay apart."""
    return tok.exact


def from_tokens(tok: Tokens, word_n: int, char_n: int) -> Shingles:
    """Shingle ids per row, repeats included (MinHash does not mind them; see unique_per_row)."""
    rows, lens, flat = len(tok.lens), tok.lens, tok.hashes
    n = np.where(tok.cjk, char_n, word_n).astype(np.int64)
    starts = offsets_of(lens)
    ends = starts[1:]
    long_rows = lens >= n
    # rolling hash over the whole flat array (windows crossing a row end are dropped below); a row's
    # shingles are the windows of its own n, taken when the window has grown to that size
    uniform = word_n == char_n or tok.cjk.all() or not tok.cjk.any()
    acc = flat.copy()
    result = acc if uniform else flat.copy()
    for k in range(1, int(n.max(initial=1))):
        acc[:-k] = acc[:-k] * _MUL + flat[k:]
        grown = long_rows & (n == k + 1)
        if not uniform and grown.any():
            mask = np.repeat(grown, lens)
            result[mask] = acc[mask]
    keep = np.repeat(long_rows, lens)
    for j in range(1, int(n.max(initial=1))):  # the last n-1 positions of a row start no full window
        tail = long_rows & (n > j)
        keep[ends[tail] - j] = False
    counts = np.where(long_rows, lens - n + 1, 1)
    offsets = offsets_of(counts)
    short = np.nonzero(~long_rows)[0]
    if not len(short):
        return Shingles(result[keep] & _MASK, offsets)
    values = np.empty(int(offsets[-1]), dtype=np.uint64)
    values[np.repeat(long_rows, counts)] = result[keep]
    if len(short):  # fewer tokens than n: one shingle of all of them (no token: of the whole text)
        keys = sequence_keys(flat[positions(starts[short], lens[short])], lens[short])
        keys = np.where(lens[short] > 0, keys, tok.whole[short])
        values[offsets[short]] = mix64(keys ^ np.uint64(0x9E6C63D0676A9A99))
    return Shingles(values & _MASK, offsets)


SHINGLE_BLOCK = 100_000  # rows tokenised at once: bounds the transient memory of tokenising


def shingle(texts: pl.Series | list[str], word_n: int, char_n: int, seed: int = 0) -> Shingles:
    """Unique shingle ids per row (sorted within the row), in blocks of SHINGLE_BLOCK rows."""
    series = texts if isinstance(texts, pl.Series) else pl.Series("t", texts, dtype=pl.Utf8)
    parts = [unique_per_row(from_tokens(tokenize(prepare(series.slice(r0, SHINGLE_BLOCK)), seed), word_n, char_n))
             for r0 in range(0, max(len(series), 1), SHINGLE_BLOCK)]
    if len(parts) == 1:
        return parts[0]
    return Shingles(np.concatenate([p.values for p in parts]), offsets_of(np.concatenate([p.sizes() for p in parts])))


def subset(sh: Shingles, rows: np.ndarray) -> Shingles:
    """The shingles of `rows` only, in that order."""
    sizes = sh.sizes()[rows]
    return Shingles(sh.values[positions(sh.offsets[rows], sizes)], offsets_of(sizes))


def unique_per_row(sh: Shingles, block: int = 1 << 16) -> Shingles:
    """Sort each row's shingles and drop repeats (one uint64 sort per block of 65,536 rows)."""
    out_vals, out_counts = [], []
    for r0 in range(0, sh.rows, block):
        r1 = min(r0 + block, sh.rows)
        a, b = sh.offsets[r0], sh.offsets[r1]
        counts = np.diff(sh.offsets[r0:r1 + 1])
        local = np.repeat(np.arange(r1 - r0, dtype=np.uint64), counts)
        keys = np.sort((local << np.uint64(SHINGLE_BITS)) | sh.values[a:b])
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        keys = keys[first]
        out_vals.append(keys & _MASK)
        out_counts.append(np.bincount((keys >> np.uint64(SHINGLE_BITS)).astype(np.int64), minlength=r1 - r0))
    values = np.concatenate(out_vals) if out_vals else np.zeros(0, dtype=np.uint64)
    counts = np.concatenate(out_counts) if out_counts else np.zeros(0, dtype=np.int64)
    return Shingles(values, offsets_of(counts))
