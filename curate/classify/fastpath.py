"""fastText inference in numpy/scipy: fastText's probabilities for many rows at once.

fastText's own ``predict`` spends most of its time building Python objects per row (labels, tuples,
arrays). The computation itself is simple: each token's input rows (its word id and character n-gram ids,
looked up once per distinct token through fastText itself), hashed word-bigram ids (FNV-1a, combined as
fastText does), the average of those input rows, times the output matrix, then fastText's table sigmoid
(one-vs-all) or softmax. Doing that for a whole batch with a sparse product gives the same numbers
(tests compare them) several times faster.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

EOS = "</s>"
_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619
_NGRAM_MULT = np.uint64(116049371)


def fnv1a(token: str) -> int:
    """fastText's Dictionary::hash: FNV-1a over the UTF-8 bytes, each byte sign-extended as int8."""
    h = _FNV_OFFSET
    for b in token.encode("utf-8"):
        h ^= (b | 0xFFFFFF00) if b >= 0x80 else b
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h


_SIGMOID_TABLE_SIZE = 512
_MAX_SIGMOID = 8
_SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-(np.arange(_SIGMOID_TABLE_SIZE + 1, dtype=np.float64) * 2 * _MAX_SIGMOID
                                         / _SIGMOID_TABLE_SIZE - _MAX_SIGMOID)))).astype(np.float32)


def _table_sigmoid(x: np.ndarray) -> np.ndarray:
    """fastText's one-vs-all loss uses a 512-entry sigmoid table, not the exact function: match it."""
    i = ((x + _MAX_SIGMOID) * _SIGMOID_TABLE_SIZE / _MAX_SIGMOID / 2).astype(np.int64)
    out = _SIGMOID_TABLE[np.clip(i, 0, _SIGMOID_TABLE_SIZE)]
    out[x < -_MAX_SIGMOID] = 0.0
    out[x > _MAX_SIGMOID] = 1.0
    return out


class FastPredictor:
    """Batch scorer equivalent to ``fasttext.predict(lines, k=-1, threshold=0)`` (one-vs-all or softmax)."""

    def __init__(self, ft: Any, labels: list[str]):
        args = ft.f.getArgs()
        self.loss = str(args.loss).rsplit(".", 1)[-1]  # "loss_name.ova" -> "ova"
        if self.loss not in ("ova", "softmax"):
            raise ValueError(f"the fast path does not cover loss {self.loss!r}")
        self.ft = ft
        self.word_ngrams = int(args.wordNgrams)
        self.bucket = int(args.bucket)
        self.nwords = len(ft.get_words(include_freq=False))
        self.input = np.asarray(ft.get_input_matrix(), dtype=np.float32)
        output = np.asarray(ft.get_output_matrix(), dtype=np.float32)
        order = {label: i for i, label in enumerate(ft.get_labels())}
        self.output = output[[order["__label__" + label] for label in labels]]  # rows in the caller's order
        self._cache: dict[str, tuple[np.ndarray, int]] = {}  # token -> (input rows, FNV hash)

    @classmethod
    def supports(cls, ft: Any) -> bool:
        if ft.is_quantized():  # product-quantised matrices cannot be read as arrays
            return False
        args = ft.f.getArgs()
        return str(args.loss).rsplit(".", 1)[-1] in ("ova", "softmax") and args.wordNgrams <= 2

    def _token_table(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For unique tokens: flat input-row ids, per-token offsets and lengths, and word hashes."""
        if len(self._cache) > 2_000_000:  # unbounded input vocabularies: start over rather than grow forever
            self._cache.clear()
        feats, hashes = [], np.empty(len(tokens), dtype=np.uint64)
        for i, tok in enumerate(tokens):
            hit = self._cache.get(tok)
            if hit is None:
                # fastText's own lookup: the word id (if known) and its character n-gram ids (if maxn > 0)
                hit = (np.asarray(self.ft.get_subwords(tok)[1], dtype=np.int64), fnv1a(tok))
                self._cache[tok] = hit
            feats.append(hit[0])
            hashes[i] = hit[1]
        lengths = np.array([len(f) for f in feats], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
        flat = np.concatenate(feats) if feats else np.zeros(0, dtype=np.int64)
        return flat, offsets, lengths, hashes

    def scores(self, lines: list[str] | pl.Series) -> np.ndarray:
        from scipy import sparse

        s = lines if isinstance(lines, pl.Series) else pl.Series("line", lines, dtype=pl.Utf8)
        n = s.len()
        if n == 0:
            return np.zeros((0, self.output.shape[0]), dtype=np.float32)
        toks = (pl.DataFrame({"tok": s.str.split(" ").list.concat(pl.lit([EOS]))})
                .with_row_index("row").explode("tok").filter(pl.col("tok") != ""))
        uniq = toks["tok"].unique(maintain_order=True)
        flat, offsets, lengths, hashes = self._token_table(uniq.to_list())
        uidx = toks.join(pl.DataFrame({"tok": uniq, "u": np.arange(uniq.len(), dtype=np.int64)}), on="tok",
                         how="left", maintain_order="left")["u"].to_numpy()
        rows = toks["row"].to_numpy().astype(np.int64)
        # every token occurrence expands to its input rows (word id and/or n-gram ids), in order
        occ_len = lengths[uidx]
        starts = np.repeat(offsets[uidx] - np.concatenate([[0], np.cumsum(occ_len)[:-1]]), occ_len)
        parts = [(np.repeat(rows, occ_len), flat[starts + np.arange(occ_len.sum())])]
        if self.word_ngrams >= 2 and len(rows) > 1:
            h = hashes[uidx]
            # fastText keeps word hashes in a std::vector<int32_t>: values >= 2**31 are sign-extended when the
            # bigram hash is computed in uint64
            h = np.where(h >= np.uint64(2**31), h | np.uint64(0xFFFFFFFF00000000), h)
            same = rows[1:] == rows[:-1]
            with np.errstate(over="ignore"):
                combined = h[:-1][same] * _NGRAM_MULT + h[1:][same]
            parts.append((rows[:-1][same], self.nwords + (combined % np.uint64(self.bucket)).astype(np.int64)))
        counts = sum(np.bincount(r, minlength=n) for r, _ in parts).astype(np.float32)
        weights = 1.0 / np.maximum(counts, 1.0)
        hidden = np.zeros((n, self.input.shape[1]), dtype=np.float32)
        for r, c in parts:  # rows are already in order: build CSR directly, no sorting or duplicate summing
            indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))])
            mat = sparse.csr_matrix((weights[r], c, indptr), shape=(n, self.input.shape[0]), dtype=np.float32)
            hidden += mat @ self.input
        logits = hidden @ self.output.T
        if self.loss == "ova":
            out = _table_sigmoid(logits)
        else:
            logits = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            out = e / e.sum(axis=1, keepdims=True)
        out[counts == 0] = 0.0  # fastText predicts nothing for a line without known features
        return out.astype(np.float32)
