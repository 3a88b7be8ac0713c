"""Fit the static encoder (static.py) to a teacher's sentence vectors: ridge least squares, closed form per step.

Given texts and their teacher vectors T (rows x 512, L2-normalised):
1. the map's rows are the top ``rank`` principal directions of T (what a rank-limited table can reproduce best);
2. the table E solves min ||A E - T basis^T||^2 + l2 ||E||^2, A the rows' mean n-gram indicators (rows x
   buckets, sparse), by conjugate gradients on the normal equations, every column at once;
3. the map is refitted by ridge least squares from the fitted means A E to T.
Deterministic: no sampling, float64 reductions; the same texts and vectors give the same file.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp

from curate.classify.embedding.ngrams import NgramSpec, ngram_buckets
from curate.classify.embedding.static import StaticEncoder, quantised


def design(texts: pl.Series | Sequence[str | None], spec: NgramSpec) -> sp.csr_matrix:
    """Rows x buckets: each row's n-gram counts divided by its n-gram total (so A @ table is the mean row)."""
    indptr, indices = ngram_buckets(texts, spec)
    counts = np.diff(indptr)
    data = np.repeat((1.0 / np.maximum(counts, 1)).astype(np.float32), counts)
    a = sp.csr_matrix((data, indices, indptr), shape=(len(counts), spec.buckets))
    a.sum_duplicates()
    return a


def principal_basis(teacher: np.ndarray, rank: int) -> np.ndarray:
    """rank x dim: the top principal directions of the teacher vectors (uncentred: the mean direction is kept)."""
    t = teacher.astype(np.float64)
    values, vectors = np.linalg.eigh(t.T @ t)
    order = np.argsort(values)[::-1][:rank]
    basis = vectors[:, order].T
    return basis * np.sign(basis.sum(axis=1, keepdims=True) + 1e-300)  # a fixed sign per direction


def ridge_cg(a: sp.csr_matrix, y: np.ndarray, l2: float, iters: int) -> np.ndarray:
    """min ||a x - y||^2 + l2 ||x||^2 for every column of y: conjugate gradients on (a'a + l2) x = a'y."""
    at = a.T.tocsr()
    x = np.zeros((a.shape[1], y.shape[1]), dtype=np.float32)
    r = (at @ y).astype(np.float32)
    p = r.copy()
    rs = np.einsum("ij,ij->j", r, r, dtype=np.float64)
    for _ in range(iters):
        q = at @ (a @ p) + l2 * p
        alpha = (rs / np.maximum(np.einsum("ij,ij->j", p, q, dtype=np.float64), 1e-300)).astype(np.float32)
        x += p * alpha
        r -= q * alpha
        rs_new = np.einsum("ij,ij->j", r, r, dtype=np.float64)
        p = r + p * (rs_new / np.maximum(rs, 1e-300)).astype(np.float32)
        rs = rs_new
    return x


def refit_basis(latent: np.ndarray, teacher: np.ndarray, l2: float = 1e-4) -> np.ndarray:
    """rank x dim map from the fitted means to the teacher vectors (ridge, closed form)."""
    z = latent.astype(np.float64)
    gram = z.T @ z
    gram += l2 * np.trace(gram) / len(gram) * np.eye(len(gram))
    return np.linalg.solve(gram, z.T @ teacher.astype(np.float64)).astype(np.float32)


def distil(texts: Sequence[str], teacher: np.ndarray, spec: NgramSpec = NgramSpec(), rank: int = 128,
           l2: float = 1e-6, iters: int = 60, log=lambda m: None) -> StaticEncoder:
    """A static encoder whose vectors reproduce ``teacher`` (rows x dim) on ``texts``."""
    a = design(texts, spec)
    log(f"design: {a.shape[0]:,} rows x {a.shape[1]:,} buckets, {a.nnz:,} non-zeros")
    basis = principal_basis(teacher, rank)
    table = ridge_cg(a, (teacher @ basis.T).astype(np.float32), l2, iters)
    rows, scale = quantised(table)  # the map is fitted to the table as it is shipped
    basis = refit_basis(np.asarray(a @ (rows * scale[:, None])), teacher)
    return StaticEncoder(rows, scale, basis, spec)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two sets of vectors."""
    num = np.einsum("ij,ij->i", a, b)
    return num / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
