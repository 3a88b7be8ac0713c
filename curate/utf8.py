"""Zero-copy access to the UTF-8 bytes of a polars string column, for compiled per-row loops."""
from __future__ import annotations

import numpy as np
import polars as pl


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
