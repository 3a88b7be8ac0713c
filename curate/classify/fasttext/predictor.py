"""fastText inference without fastText: its probabilities for many texts at once, from the model file.

The model file (plain or quantised, read by format.py) gives the vocabulary, the kept hash buckets, the input and
output matrices. At load every input row is multiplied by the output matrix (rows x labels: fastText averages
input rows and then multiplies, a linear map, so the order can be swapped), and every vocabulary word's rows
(the word and its character n-grams) are summed once. Scoring a batch is then one compiled loop per row
(kernels.score_rows) over the text's UTF-8 bytes straight from Arrow: it does tokens.normalise's work
(cut, lowercase, digit runs; from per-code-point tables that polars computed, so both agree), splits, hashes
and looks up tokens, sums their rows and turns the sums into fastText's table sigmoid (one-vs-all) or softmax.
Batches are split over threads; the loop releases the GIL.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from curate.classify.fasttext import kernels
from curate.classify.fasttext.tokens import MAX_CHARS, char_classes, lowercase_table, normalise
from curate.classify.fasttext.format import FastTextArrays
from curate.slices import map_slices
from curate.utf8 import utf8_buffers

EOS = "</s>"
PREFIX = "__label__"
CHUNK = 20_000  # rows per task: bounds memory, and several tasks per batch keep the threads busy

_SIGMOID_TABLE_SIZE = 512
_MAX_SIGMOID = 8
# fastText's one-vs-all loss looks the sigmoid up in a 512-step table (Loss::sigmoid): the loops use the same
_SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-(np.arange(_SIGMOID_TABLE_SIZE + 1, dtype=np.float64) * 2 * _MAX_SIGMOID
                                         / _SIGMOID_TABLE_SIZE - _MAX_SIGMOID)))).astype(np.float32)


def _aligned_rows(matrix: np.ndarray) -> np.ndarray:
    """float32 copy whose rows are padded to a power-of-two width (16 floats = one 64-byte cache line for
    15 labels) and start on 64-byte boundaries: the loops read one random row per token and bigram, and a row
    that straddles two cache lines costs two memory reads."""
    rows, width = matrix.shape
    padded = 1 << max(0, (width - 1).bit_length())
    if padded > 16:
        padded = -(-width // 16) * 16
    buf = np.zeros(rows * padded + 16, dtype=np.float32)
    skip = (-buf.ctypes.data % 64) // 4
    out = buf[skip:skip + rows * padded].reshape(rows, padded)
    out[:, :width] = matrix
    return out


class FastPredictor:
    """Batch scorer equal to ``fasttext.predict(prepare(texts), k=-1, threshold=0)`` (one-vs-all or softmax),
    columns in the caller's label order."""

    def __init__(self, model: FastTextArrays, labels: Sequence[str]):
        if model.loss not in ("ova", "softmax"):
            raise ValueError(f"the fast path does not cover loss {model.loss!r} (one-vs-all and softmax only)")
        if model.model != "supervised":
            raise ValueError(f"not a supervised (classifier) fastText model: {model.model}")
        order = {label: i for i, label in enumerate(model.labels)}
        missing = [label for label in labels if PREFIX + label not in order]
        if missing:
            raise ValueError(f"the fastText model has no label(s) {missing}")
        self.loss = model.loss
        self.minn, self.maxn, self.bucket, self.word_ngrams = model.minn, model.maxn, model.bucket, model.word_ngrams
        output = model.output[[order[PREFIX + label] for label in labels]]
        self.n_labels = len(labels)
        with np.errstate(over="ignore", invalid="ignore"):
            self.proj = _aligned_rows(model.input.astype(np.float64) @ output.T.astype(np.float64))
        # fastText can end training with some NaN weights and no error (seen in the test suite's tiny models):
        # texts that use them score 0 here (fastText's own predict is undefined behaviour on them), others as usual
        self.finite = bool(np.isfinite(self.proj).all())
        self.pruned = model.bucket_rows is not None
        self.bucket_rows = (model.bucket_rows if self.pruned else np.zeros(1)).astype(np.int32)
        encoded = [w.encode("utf-8") for w in model.words]
        self.word_bytes = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)
        self.word_offsets = np.concatenate([[0], np.cumsum([len(w) for w in encoded], dtype=np.int64)])
        self.slots = np.full(1 << max(4, (2 * len(encoded)).bit_length()), -1, dtype=np.int64)
        self.word_hash = kernels.vocabulary(self.word_bytes, self.word_offsets, self.slots)
        self.eos = model.words.index(EOS) if EOS in model.words else -1
        self.eos_hash = np.uint64(kernels.word_hash_of(np.frombuffer(EOS.encode(), dtype=np.uint8)))
        self.wsum = _aligned_rows(np.zeros((len(encoded), self.n_labels)))
        self.wcount = np.zeros(len(encoded), dtype=np.int64)
        kernels.word_table(self.word_bytes, self.word_offsets, self.eos, self.minn, self.maxn, self.bucket,
                             self.bucket_rows, self.pruned, self.proj, self.wsum, self.wcount)
        self._model = (self.slots, self.word_hash, self.word_bytes, self.word_offsets, self.wsum, self.wcount,
                       self.proj, self.bucket_rows)
        self._scalars = (self.eos, self.eos_hash, self.pruned, self.bucket, self.minn, self.maxn, self.word_ngrams,
                         self.loss == "ova", self.n_labels)

    def _score(self, raw: pl.Series, lowering: bool = True) -> np.ndarray:
        """Probabilities of one chunk of text (raw; or already normalised with ``lowering`` off)."""
        data, offsets = utf8_buffers(raw.cast(pl.Utf8).fill_null("").rechunk())
        out = np.zeros((len(offsets) - 1, self.proj.shape[1]), dtype=np.float32)
        status = np.zeros(len(offsets) - 1, dtype=np.uint8)
        lower, classes = lowercase_table()
        text = (lower, classes, MAX_CHARS, True) if lowering else (lower, char_classes(), 1 << 62, False)
        kernels.score_rows(data, offsets, text, self._model, self._scalars, _SIGMOID_TABLE, out, status)
        redo = np.flatnonzero(status)
        if len(redo):  # the few rows whose lowercase is not per character: polars normalises them
            out[redo] = self._score(normalise(raw.gather(redo)), lowering=False)
        return out

    def scores(self, texts: pl.Series | Sequence[str | None], threads: int | None = None,
               chunk: int = CHUNK) -> np.ndarray:
        """Probabilities, one row per text (raw text: normalised here exactly as for training), in tasks of at
        most ``chunk`` rows, as many per thread (the last task does not run alone while the other threads idle)."""
        s = texts if isinstance(texts, pl.Series) else pl.Series("text", list(texts), dtype=pl.Utf8)
        n = s.len()
        if n == 0:
            return np.zeros((0, self.n_labels), dtype=np.float32)
        return np.concatenate(map_slices(s, self._score, threads, chunk))[:, :self.n_labels]
