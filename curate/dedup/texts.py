"""The text column dedup compares, held in memory or read from a run's shards when needed.

On a 10M-row run the prompts alone are 3.6 GB in memory, and dedup reads each text at most a few times: once
for its signature, once more if it is in a candidate pair, once for decontamination. So the pipeline runner
leaves the column out of the frame it gives dedup (``Stage.streamed``) and dedup reads it through
``ShardTexts``, one shard at a time, never whole. ``FrameTexts`` is a column in memory (a stage run on files,
the Dask engine, the benchmarks), which the signature pass slices through the engine (``signatures.compute``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

class FrameTexts:
    """A text column in memory."""

    def __init__(self, series: pl.Series):
        self.series = series

    def __len__(self) -> int:
        return len(self.series)

    def gather(self, rows: np.ndarray) -> pl.Series:
        return self.series.gather(rows)


class ShardTexts:
    """One text column of a stage output's parquet shards, read shard by shard (each shard's row count comes
    from its parquet footer)."""

    def __init__(self, paths: list[Path], column: str):
        self.paths, self.column = list(paths), column
        sizes = [pl.scan_parquet(p).select(pl.len()).collect().item() for p in self.paths]
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _read(self, shard: int) -> pl.Series:
        return pl.read_parquet(self.paths[shard], columns=[self.column])[self.column]

    def _take(self, shard: int, rows: np.ndarray) -> pa.ChunkedArray:
        # pyarrow's take copies the texts taken; a polars gather would share the shard's whole string buffers, so
        # the texts of a 900k-row round kept every shard's column alive (3.6 GB at 10M rows)
        return pq.read_table(self.paths[shard], columns=[self.column]).column(self.column).take(pa.array(rows))

    def slices(self) -> Iterator[pl.Series]:
        """The column, one shard at a time."""
        for shard in range(len(self.paths)):
            yield self._read(shard)

    def gather(self, rows: np.ndarray) -> pl.Series:
        """The texts of ``rows`` (ascending), reading only the shards that hold one of them."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) > 1 and np.any(rows[1:] < rows[:-1]):
            raise ValueError("ShardTexts.gather needs ascending rows")
        parts = []
        bounds = np.searchsorted(rows, self.starts)
        for shard in range(len(self.paths)):
            lo, hi = bounds[shard], bounds[shard + 1]
            if hi > lo:
                parts.extend(self._take(shard, rows[lo:hi] - self.starts[shard]).chunks)
        if not parts:
            return pl.Series(self.column, [], dtype=pl.Utf8)
        taken = pl.Series(self.column, pa.chunked_array(parts), dtype=pl.Utf8)  # polars copies them again
        del parts
        pa.default_memory_pool().release_unused()  # arrow's allocator kept 150-550 MB of a 900k-row round
        return taken


Texts = FrameTexts | ShardTexts
