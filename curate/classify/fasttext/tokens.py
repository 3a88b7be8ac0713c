"""Text -> fastText input lines, vectorised with polars (no Python loop per record or per character).

Chinese characters are split into single tokens so fastText's word bigrams (wordNgrams=2) become character
bigrams for Chinese and word bigrams for English; other scripts keep their words. Punctuation becomes its
own token, digits collapse to 0 (numbers carry source style, not harm), and over-long texts are cut.

``prepare`` writes the tokens out as fastText input lines (training, fastText's own predict). The fast
scorer (predictor.py) reads the raw text in one pass with ``lowercase_table`` and ``char_classes``: ``normalise``
and ``TOKEN`` evaluated once per code point by polars itself, so both see the same token stream.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import polars as pl

from curate.utf8 import utf8_buffers

HAN, WORD, SPACE = r"\p{Han}", r"\w", r"\s"
# one pass: each Han character, each run of other word characters, each other non-space character is a token
TOKEN = rf"{HAN}|[{WORD}--{HAN}]+|[^{WORD}{SPACE}]"
MAX_CHARS = 1500

# character classes of TOKEN, for scanners that split text without the regex (C_DIGIT: a word character
# that normalise turns into 0, one per run)
C_SPACE, C_HAN, C_WORD, C_OTHER, C_DIGIT = 0, 1, 2, 3, 4


def normalise(texts: pl.Series | Sequence[str | None], max_chars: int = MAX_CHARS) -> pl.Series:
    """The text TOKEN is applied to: cut to ``max_chars``, lowercased, digit runs as a single 0."""
    s = texts if isinstance(texts, pl.Series) else pl.Series("text", list(texts), dtype=pl.Utf8)
    return s.cast(pl.Utf8).fill_null("").str.slice(0, max_chars).str.to_lowercase().str.replace_all(r"\d+", "0")


def prepare(texts: pl.Series | Sequence[str | None], max_chars: int = MAX_CHARS) -> pl.Series:
    """One fastText input line per text (lowercased, CJK characters spaced, single spaces, no newlines)."""
    return normalise(texts, max_chars).str.extract_all(TOKEN).list.join(" ").fill_null("")


@lru_cache(maxsize=1)
def _code_points() -> tuple[np.ndarray, pl.Series]:
    """Every code point but the surrogates, and the same as a series of one-character strings."""
    import pyarrow as pa

    points = np.concatenate([np.arange(0xD800, dtype=np.uint32), np.arange(0xE000, 0x110000, dtype=np.uint32)])
    data = points.tobytes().decode("utf-32-le").encode("utf-8")
    sizes = 1 + (points >= 0x80) + (points >= 0x800) + (points >= 0x10000)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    chars = pl.from_arrow(pa.StringArray.from_buffers(len(points), pa.py_buffer(offsets.tobytes()),
                                                      pa.py_buffer(data)))
    return points, chars


@lru_cache(maxsize=1)
def char_classes() -> np.ndarray:
    """uint8 class of every code point under TOKEN: C_HAN and C_OTHER characters are tokens on their own,
    runs of C_WORD characters are one token, C_SPACE separates. Computed with polars' regex engine (the one
    ``prepare`` uses), one single-character string per code point, so the two cannot disagree."""
    points, chars = _code_points()
    frame = pl.DataFrame({"c": chars}).select(
        han=pl.col("c").str.contains(f"^{HAN}$"), word=pl.col("c").str.contains(f"^{WORD}$"),
        space=pl.col("c").str.contains(f"^{SPACE}$"))
    han, word, space = (frame[name].to_numpy() for name in ("han", "word", "space"))
    cls = np.where(han, C_HAN, np.where(word, C_WORD, np.where(space, C_SPACE, C_OTHER))).astype(np.uint8)
    out = np.full(0x110000, C_OTHER, dtype=np.uint8)  # surrogates cannot occur in valid UTF-8
    out[points] = cls
    return out


@lru_cache(maxsize=1)
def lowercase_table() -> tuple[np.ndarray, np.ndarray]:
    """What ``normalise`` then TOKEN make of each code point, for one-pass scanners: (lower, classes).

    ``lower``: the code point polars' ``str.to_lowercase`` gives it, or -1 where that is not a per-character
    map (U+0130 becomes two characters; Σ becomes σ or ς depending on its neighbours). ``classes``: the TOKEN
    class of that lowercase character, C_DIGIT for the characters ``\\d`` matches (a run of them becomes 0)."""
    points, chars = _code_points()
    data, offsets = utf8_buffers(chars.str.to_lowercase())
    size = np.diff(offsets)
    # decode each lowercase string's first character; it is the whole string where its UTF-8 length matches
    b = [data[np.minimum(offsets[:-1] + j, len(data) - 1)].astype(np.int32) for j in range(4)]
    first = np.where(b[0] < 0x80, 1, np.where(b[0] < 0xE0, 2, np.where(b[0] < 0xF0, 3, 4)))
    cp = np.select([first == 1, first == 2, first == 3],
                   [b[0], ((b[0] & 0x1F) << 6) | (b[1] & 0x3F),
                    ((b[0] & 0x0F) << 12) | ((b[1] & 0x3F) << 6) | (b[2] & 0x3F)],
                   ((b[0] & 0x07) << 18) | ((b[1] & 0x3F) << 12) | ((b[2] & 0x3F) << 6) | (b[3] & 0x3F))
    single = (first == size) & (points != ord("Σ"))
    lower = np.full(0x110000, -1, dtype=np.int32)
    lower[points[single]] = cp[single]
    classes = char_classes()[np.maximum(lower, 0)]
    classes[points[chars.str.contains(r"^\d$").to_numpy()]] = C_DIGIT
    return lower, classes
