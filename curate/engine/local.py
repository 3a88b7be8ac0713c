"""The local engine: every stage runs in this process; slices of a column go to a thread pool."""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import polars as pl


class LocalEngine:
    name = "local"

    def run_stage(self, stage, df: pl.DataFrame, options: Any, ctx) -> pl.DataFrame:
        return stage.run(df, options, ctx)

    def map_slices(self, fn: Callable[[pl.Series], Any], values: pl.Series, *, shard_rows: int, workers: int = 0,
                   advance: Callable[[int], None] = lambda n: None, work_dir=None) -> list[Any]:
        """``fn`` over consecutive slices of ``values`` on ``workers`` threads (0: one per core), results in order.

        Threads, not processes: the kernels mapped here release the GIL, and threads start in microseconds
        where a process took a second and had every slice pickled to it."""
        n = len(values)
        workers = workers or os.cpu_count() or 1
        if workers > 1:
            shard_rows = max(1, min(shard_rows, -(-n // workers)))
        slices = (values.slice(i, shard_rows) for i in range(0, n, shard_rows)) if n else iter([values.clear()])
        return self.map_each(fn, slices, workers=workers, advance=advance)

    def map_each(self, fn: Callable[[pl.Series], Any], pieces: Iterable[pl.Series], *, workers: int = 0,
                 advance: Callable[[int], None] = lambda n: None) -> list[Any]:
        """``fn`` over ``pieces`` on ``workers`` threads, results in order. Pieces are taken from the iterable only
        as threads free up (at most two per thread waiting), so pieces read from disk are never all in memory."""
        workers = workers or os.cpu_count() or 1
        results: list[Any] = []
        waiting: deque = deque()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for piece in pieces:
                waiting.append((len(piece), pool.submit(fn, piece)))
                while len(waiting) >= 2 * workers:
                    _collect(waiting, results, advance)
            while waiting:
                _collect(waiting, results, advance)
        return results

    def run_requests(self, config, requests, *, on_done=None, stats=None):
        """LLM requests through one client in this process (``curate.llm.run_requests``)."""
        from curate.llm import run_requests

        return run_requests(config, requests, on_done=on_done, stats=stats)


def _collect(waiting: deque, results: list, advance: Callable[[int], None]) -> None:
    size, future = waiting.popleft()
    results.append(future.result())
    advance(size)


LOCAL = LocalEngine()
