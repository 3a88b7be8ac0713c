"""Zero-copy access to the UTF-8 bytes of a polars string column, and the UTF-8 decoder of the compiled per-row
loops that read them."""
from __future__ import annotations

import numpy as np
import polars as pl
from numba import njit


def utf8_buffers(series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, row offsets into them) of a string series without nulls, straight from Arrow:
    row i is data[offsets[i]:offsets[i + 1]]."""
    arr = series.to_arrow()
    if str(arr.type) != "large_string":
        arr = arr.cast("large_string")
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(1, dtype=np.uint8)
    return data, offsets


@njit(cache=True, inline="always")
def decode_at(data, i):
    """(code point, byte length) of the UTF-8 character at data[i] (Arrow strings are valid UTF-8): the one
    decoder of the compiled loops (dedup's shingles, the fastText tokeniser)."""
    b = np.int64(data[i])
    if b < 0x80:
        return b, 1
    if b < 0xE0:
        return ((b & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), 2
    if b < 0xF0:
        return ((b & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F), 3
    return (((b & 0x07) << 18) | ((np.int64(data[i + 1]) & 0x3F) << 12)
            | ((np.int64(data[i + 2]) & 0x3F) << 6) | (np.int64(data[i + 3]) & 0x3F)), 4
