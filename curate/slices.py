"""Work over a string column in slices, spread over threads (for compiled loops that release the GIL)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import polars as pl

T = TypeVar("T")
THREADS = max(1, min(4, os.cpu_count() or 1))


def map_slices(s: pl.Series, work: Callable[[pl.Series], T], threads: int | None, chunk: int) -> list[T]:
    """``work`` on consecutive slices of ``s`` of at most ``chunk`` rows, in order, as many slices per thread
    (the last task does not run alone while the other threads idle)."""
    n = s.len()
    threads = max(1, min(threads or THREADS, -(-n // chunk)))
    tasks = threads * -(-n // (threads * chunk))
    size = -(-n // tasks)
    starts = range(0, n, size)
    if threads <= 1:
        return [work(s.slice(i, size)) for i in starts]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda i: work(s.slice(i, size)), starts))
