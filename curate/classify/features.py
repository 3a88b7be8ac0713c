"""Text -> fastText input lines, vectorised with polars (no Python loop per record or per character).

Chinese characters are split into single tokens so fastText's word bigrams (wordNgrams=2) become character
bigrams for Chinese and word bigrams for English; other scripts keep their words. Punctuation becomes its
own token, digits collapse to 0 (numbers carry source style, not harm), and over-long texts are cut.
"""
from __future__ import annotations

from typing import Sequence

import polars as pl

TOKEN = r"\p{Han}|[\w--\p{Han}]+|[^\w\s]"
MAX_CHARS = 1500


def prepare(texts: pl.Series | Sequence[str | None], max_chars: int = MAX_CHARS) -> pl.Series:
    """One fastText input line per text (lowercased, CJK characters spaced, single spaces, no newlines)."""
    s = texts if isinstance(texts, pl.Series) else pl.Series("text", list(texts), dtype=pl.Utf8)
    return (
        s.cast(pl.Utf8).fill_null("")
        .str.slice(0, max_chars)
        .str.to_lowercase()
        .str.replace_all(r"\d+", "0")
        # one pass: each Han character, each run of other word characters, each punctuation mark is a token
        .str.extract_all(TOKEN)
        .list.join(" ")
        .fill_null("")
    )

