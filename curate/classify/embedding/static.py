"""The static sentence encoder: USE multilingual v3 distilled into a table of hashed character n-gram vectors.

A text's vector is the mean of its n-grams' table rows (ngrams.py), mapped to the teacher's 512 dimensions by
one matrix and L2-normalised: no network, a few thousand times cheaper than the teacher (its CNN costs about
3.4 MFLOP per token). The table and the map were fitted by least squares to reproduce the teacher's vectors on
real prompts (distil.py; ``benchmarks/train_static_encoder.py`` rebuilds the file, deterministically).

The file (``curate/models/static_encoder.npz``): ``table`` (buckets x rank, float16), ``basis`` (rank x 512,
float32) and the n-gram spec. Same ``encode`` as the teacher's ``Encoder``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl
from numba import njit

from curate.classify.embedding.ngrams import NgramSpec, ngram_buckets

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "models" / "static_encoder.npz"
CHUNK = 16_384  # rows per pass: bounds the n-gram index buffer (about 250 n-grams a row)


@njit(cache=True, nogil=True)
def mean_rows(indptr, indices, table, out):
    """out[r] = mean of table[indices[indptr[r]:indptr[r + 1]]] (0 for a row without n-grams)."""
    for r in range(out.shape[0]):
        a, b = indptr[r], indptr[r + 1]
        for j in range(out.shape[1]):
            out[r, j] = 0.0
        for k in range(a, b):
            row = indices[k]
            for j in range(out.shape[1]):
                out[r, j] += table[row, j]
        if b > a:
            inv = np.float32(1.0 / (b - a))
            for j in range(out.shape[1]):
                out[r, j] *= inv


def normalised(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


class StaticEncoder:
    """Hashed character n-gram table + a map to the teacher's space; L2-normalised float32 vectors."""

    def __init__(self, table: np.ndarray, basis: np.ndarray, spec: NgramSpec):
        self.table = np.ascontiguousarray(table, dtype=np.float32)
        self.basis = np.ascontiguousarray(basis, dtype=np.float32)
        self.spec = spec

    def latent(self, texts: pl.Series | Sequence[str | None]) -> np.ndarray:
        """Mean n-gram rows per text (rows x rank), before the map and the normalisation."""
        s = texts if isinstance(texts, pl.Series) else pl.Series("text", list(texts), dtype=pl.Utf8)
        out = np.empty((len(s), self.table.shape[1]), dtype=np.float32)
        for start in range(0, len(s), CHUNK):
            indptr, indices = ngram_buckets(s.slice(start, CHUNK), self.spec)
            mean_rows(indptr, indices, self.table, out[start:start + CHUNK])
        return out

    def encode(self, texts: pl.Series | Sequence[str | None]) -> np.ndarray:
        return normalised(self.latent(texts) @ self.basis)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, table=self.table.astype(np.float16), basis=self.basis,
                            spec=np.array([self.spec.minn, self.spec.maxn, self.spec.buckets, self.spec.max_chars]))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> "StaticEncoder":
        with np.load(path, allow_pickle=False) as data:
            minn, maxn, buckets, max_chars = (int(v) for v in data["spec"])
            return cls(data["table"], data["basis"], NgramSpec(minn, maxn, buckets, max_chars))
