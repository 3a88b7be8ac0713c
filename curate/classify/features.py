"""Text -> fastText input lines, vectorised with polars (no Python loop per record or per character).

Chinese characters are split into single tokens so fastText's word bigrams (wordNgrams=2) become character
bigrams for Chinese and word bigrams for English; other scripts keep their words. Punctuation becomes its
own token, digits collapse to 0 (numbers carry source style, not harm), and over-long texts are cut.
"""
from __future__ import annotations

from typing import Sequence

import polars as pl

CJK = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
MAX_CHARS = 1500


def prepare(texts: pl.Series | Sequence[str | None], max_chars: int = MAX_CHARS) -> pl.Series:
    """One fastText input line per text (lowercased, CJK characters spaced, single spaces, no newlines)."""
    s = texts if isinstance(texts, pl.Series) else pl.Series("text", list(texts), dtype=pl.Utf8)
    return (
        s.cast(pl.Utf8).fill_null("")
        .str.slice(0, max_chars)
        .str.to_lowercase()
        .str.replace_all(r"\d+", "0")
        .str.replace_all(CJK, " $0 ")
        .str.replace_all(r"[^\w\s]", " $0 ")  # punctuation (ASCII and CJK) as separate tokens
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def cjk_share(texts: pl.Series) -> pl.Series:
    """Fraction of CJK characters per text: a cheap language signal that needs no detector."""
    s = texts.cast(pl.Utf8).fill_null("")
    return (s.str.count_matches(CJK) / s.str.len_chars().clip(lower_bound=1)).fill_nan(0.0)
