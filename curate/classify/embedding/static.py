"""The static sentence encoder: USE multilingual v3 distilled into a table of hashed character n-gram vectors.

A text's vector is the mean of its n-grams' table rows (ngrams.py), mapped to the teacher's 512 dimensions by
one matrix and L2-normalised: no network, a few thousand times cheaper than the teacher (its CNN costs about
3.4 MFLOP per token). The table and the map were fitted by least squares to reproduce the teacher's vectors on
real prompts (distil.py; ``benchmarks/train_static_encoder.py`` rebuilds the file, deterministically).

The file (``curate/models/static_encoder.npz``): ``rows`` (buckets x rank, int8, row i scaled by ``scale[i]``:
a quarter of float32's memory reads, vectors within 1e-3 cosine of the unquantised table), ``basis`` (rank x 512,
float32) and the n-gram spec. Same ``encode`` as the teacher's ``Encoder``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl
from numba import njit

from curate.classify.embedding.ngrams import NgramSpec, ngram_buckets
from curate.slices import map_slices

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "models" / "static_encoder.npz"
CHUNK = 16_384  # rows per task: bounds the n-gram index buffer (about 250 n-grams a row)


@njit(cache=True, nogil=True, fastmath=True)
def mean_rows(indptr, indices, rows, scale, out):
    """out[r] = mean over k in indptr[r]:indptr[r + 1] of scale[i] * rows[i], i = indices[k] (0 without n-grams).
    int8 rows: the loop is bound by memory reads, a quarter of float32's."""
    acc = np.zeros(out.shape[1], dtype=np.float32)
    for r in range(out.shape[0]):
        a, b = indptr[r], indptr[r + 1]
        acc[:] = 0.0
        for k in range(a, b):
            i = indices[k]
            s = scale[i]
            for j in range(acc.shape[0]):
                acc[j] += s * np.float32(rows[i, j])
        inv = np.float32(1.0 / (b - a)) if b > a else np.float32(0.0)
        for j in range(acc.shape[0]):
            out[r, j] = acc[j] * inv


def normalised(x: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return (x / np.maximum(norm, 1e-12)).astype(np.float32, copy=False)


def quantised(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and a float32 scale per row (rows x rank float -> the same within half a step of 1/127)."""
    scale = (np.abs(table).max(axis=1) / 127.0).astype(np.float32)
    return np.rint(table / np.maximum(scale, 1e-30)[:, None]).astype(np.int8), scale


class StaticEncoder:
    """Hashed character n-gram table (int8 rows with a scale each) + a map to the teacher's space; L2-normalised
    float32 vectors."""

    def __init__(self, rows: np.ndarray, scale: np.ndarray, basis: np.ndarray, spec: NgramSpec,
                 threads: int | None = None):
        self.rows = np.ascontiguousarray(rows, dtype=np.int8)
        self.scale = np.ascontiguousarray(scale, dtype=np.float32)
        self.basis = np.ascontiguousarray(basis, dtype=np.float32)
        self.spec = spec
        self.threads = threads

    def _latent(self, s: pl.Series) -> np.ndarray:
        indptr, indices = ngram_buckets(s, self.spec)
        out = np.empty((s.len(), self.rows.shape[1]), dtype=np.float32)
        mean_rows(indptr, indices, self.rows, self.scale, out)
        return out

    def latent(self, texts: pl.Series | Sequence[str | None]) -> np.ndarray:
        """Mean n-gram rows per text (rows x rank), before the map and the normalisation."""
        s = texts if isinstance(texts, pl.Series) else pl.Series("text", list(texts), dtype=pl.Utf8)
        if s.len() == 0:
            return np.zeros((0, self.rows.shape[1]), dtype=np.float32)
        return np.concatenate(map_slices(s, self._latent, self.threads, CHUNK))

    def encode(self, texts: pl.Series | Sequence[str | None], cache: bool = True) -> np.ndarray:
        """Vectors of ``texts`` (``cache`` is the teacher's option; this encoder keeps nothing)."""
        return normalised(self.latent(texts) @ self.basis)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, rows=self.rows, scale=self.scale, basis=self.basis,
                            spec=np.array([self.spec.minn, self.spec.maxn, self.spec.buckets, self.spec.max_chars,
                                           self.spec.words]))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> "StaticEncoder":
        with np.load(path, allow_pickle=False) as data:
            return cls(data["rows"], data["scale"], data["basis"], NgramSpec(*(int(v) for v in data["spec"])))
