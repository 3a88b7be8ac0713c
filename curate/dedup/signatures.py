"""LSH band keys of texts, in shards on parallel threads.

The signature is one-permutation MinHash with optimal densification (kernels.py): K = bands x rows bins,
each shingle hashed once, collision probability per bin equal to the Jaccard similarity, seeded so the
same text gets the same keys in every process and run. Candidates are verified with the exact Jaccard,
so the sketch only decides which pairs get checked. What is kept per row is one uint64 key per band.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl

from curate.dedup import kernels
from curate.dedup.shingles import Shingles, Shingling, kernel_input
from curate.dedup.texts import FrameTexts, Texts
from curate.engine.local import LOCAL


@dataclass(frozen=True)
class Params:
    shingling: Shingling
    bands: int
    rows: int
    seed: int = 1


def band_keys(sh: Shingles, bands: int, rows: int, seed: int = 1) -> np.ndarray:
    """uint64 array [bands, n_rows]: a hash of each band's slice of each row's signature."""
    return kernels.shingle_signatures(sh.values, sh.offsets, bands, rows, seed)


def shard_signatures(texts: pl.Series | list[str], params: Params) -> tuple[np.ndarray, np.ndarray]:
    """One shard's work, the unit a process pool (or later a distributed engine) maps over texts:
    (exact key per row, band keys [bands, rows]). The shingles are dropped here: only the few rows in
    candidate pairs need them again, and recomputing those is cheaper than keeping or shipping all."""
    data, offsets, classes = kernel_input(texts)
    spec = params.shingling
    return kernels.signature_rows(data, offsets, classes, spec.word_n, spec.char_n, spec.weighted, params.bands,
                                  params.rows, params.seed, *kernels.scratch_sizes(offsets, spec.word_n, spec.weighted))


@dataclass
class RowFacts:
    """What one pass over the texts keeps of each row (the texts themselves are not kept)."""

    present: np.ndarray  # bool: the text has a non-space character (an empty row is never a duplicate)
    chars: np.ndarray  # int64: its length in characters (the "longest" representative criterion)
    exact: np.ndarray  # uint64: its exact key (tokens, so case, width, punctuation and spacing do not count)
    keys: np.ndarray  # uint64 [bands, rows]: its LSH band keys


def shard_facts(texts: pl.Series, params: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    exact, keys = shard_signatures(texts, params)
    return (texts.str.contains(r"\S").fill_null(False).to_numpy(), texts.str.len_chars().fill_null(0).to_numpy(),
            exact, keys)


def compute(texts: Texts, params: Params, workers: int = 1, shard_rows: int = 100_000,
            advance=lambda n: None, engine=LOCAL, work_dir=None) -> RowFacts:
    """Every row's facts, slice by slice on the engine (threads here, or Dask workers; texts read from shards
    run on this process's threads)."""
    fn = partial(shard_facts, params=params)
    if isinstance(texts, FrameTexts):
        parts = engine.map_slices(fn, texts.series, shard_rows=shard_rows, workers=workers, advance=advance,
                                  work_dir=work_dir)
    else:
        parts = LOCAL.map_each(fn, texts.slices(), workers=workers, advance=advance)
    present, chars, exact = (np.concatenate([p[i] for p in parts]) for i in range(3))
    # one array for all shards, each shard's keys freed once copied: a concatenate would hold them all twice
    keys = np.empty((params.bands, len(exact)), dtype=np.uint64)
    at = 0
    while parts:
        part = parts.pop(0)[3]
        keys[:, at:at + part.shape[1]] = part
        at += part.shape[1]
    return RowFacts(present=present, chars=chars.astype(np.int64), exact=exact, keys=keys)
