"""Read a fastText supervised model file (.bin, plain or product-quantised) into numpy arrays.

fastText's Python binding cannot hand out the matrices of a quantised model, nor its pruned n-gram table, so
curate reads the file itself. The layout is fastText's own (FastText::saveModel, format version 12): a magic
number and version, the training args, the dictionary (entries, then the pruned-bucket map), the input matrix
(dense, or product-quantised codes with their centroids and optional quantised row norms) and the output
matrix. Quantised rows are decoded once, here, exactly as fastText's QuantMatrix::addRowToVector does, so the
arrays give the same numbers fastText uses when it predicts.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

MAGIC = 793712314
VERSION = 12
_LOSS = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}
_MODEL = {1: "cbow", 2: "sg", 3: "supervised"}
_KSUB = 256  # centroids per sub-quantiser (fastText's ProductQuantizer::ksub_)


class FastTextFormatError(ValueError):
    """The bytes are not a fastText model this reader understands."""


@dataclass
class FastTextArrays:
    """Everything inference needs, as plain Python/numpy values."""

    dim: int
    word_ngrams: int
    loss: str
    model: str
    bucket: int
    minn: int
    maxn: int
    words: list[str]  # in id order: row i of ``input`` is word i
    labels: list[str]  # in output-row order, with fastText's "__label__" prefix
    bucket_rows: np.ndarray | None  # pruned models: hash bucket -> input row (-1: pruned away); None: nwords + bucket
    input: np.ndarray  # float32 (rows, dim)
    output: np.ndarray  # float32 (labels, dim)
    quantized: bool

    def bucket_row(self, buckets: np.ndarray) -> np.ndarray:
        """Input rows of hash buckets (int64, -1 where pruning dropped the bucket), like Dictionary::pushHash."""
        if self.bucket_rows is None:
            return len(self.words) + buckets.astype(np.int64)
        return self.bucket_rows[buckets]


class _Reader:
    def __init__(self, data: bytes):
        self.raw, self.data, self.pos = data, memoryview(data), 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise FastTextFormatError("the file ends early (truncated?)")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if count < 0 or self.pos + size > len(self.data):
            raise FastTextFormatError("the file ends early (truncated?)")
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return out

    def cstring(self) -> bytes:
        end = self.raw.find(b"\0", self.pos)
        if end < 0:
            raise FastTextFormatError("a dictionary entry has no terminator")
        word = self.raw[self.pos:end]
        self.pos = end + 1
        return word


def _product_quantizer(r: _Reader) -> tuple[int, int, int, int, np.ndarray]:
    dim, nsubq, dsub, lastdsub = r.take("<4i")
    return dim, nsubq, dsub, lastdsub, r.array("<f4", dim * _KSUB)


def _decode(codes: np.ndarray, pq: tuple[int, int, int, int, np.ndarray]) -> np.ndarray:
    """Rows of a product-quantised matrix: each sub-vector is its code's centroid (ProductQuantizer::addcode)."""
    dim, nsubq, dsub, lastdsub, centroids = pq
    codes = codes.reshape(-1, nsubq)
    out = np.empty((codes.shape[0], dim), dtype=np.float32)
    full = centroids[:(nsubq - 1) * _KSUB * dsub].reshape(nsubq - 1, _KSUB, dsub)
    for m in range(nsubq - 1):
        out[:, m * dsub:(m + 1) * dsub] = full[m][codes[:, m]]
    last = centroids[(nsubq - 1) * _KSUB * dsub:(nsubq - 1) * _KSUB * dsub + _KSUB * lastdsub].reshape(_KSUB, lastdsub)
    out[:, (nsubq - 1) * dsub:] = last[codes[:, nsubq - 1]]
    return out


def _matrix(r: _Reader, quantized: bool) -> np.ndarray:
    if not quantized:
        m, n = r.take("<2q")
        return r.array("<f4", m * n).reshape(m, n).astype(np.float32)
    qnorm, m, n, codesize = r.take("<?2qi")
    codes = r.array("u1", codesize)
    pq = _product_quantizer(r)
    if codesize != m * pq[1] or pq[0] != n:
        raise FastTextFormatError("inconsistent product-quantiser sizes")
    rows = _decode(codes, pq)
    if qnorm:
        norm_codes = r.array("u1", m)
        npq = _product_quantizer(r)
        rows *= npq[4][norm_codes.astype(np.int64)][:, None]  # the norm is a 1-d centroid (dsub = 1)
    return rows


def read(data: bytes) -> FastTextArrays:
    """Parse a fastText supervised model from its file contents."""
    r = _Reader(data)
    magic, version = r.take("<2i")
    if magic != MAGIC:
        raise FastTextFormatError("not a fastText model file (wrong magic number)")
    if version != VERSION:
        raise FastTextFormatError(f"fastText file format version {version}; curate reads version {VERSION} "
                                  "(fastText >= 0.9); re-save the model with a current fastText")
    dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, model, bucket, minn, maxn, _lr_update = r.take("<12i")
    r.take("<d")  # sampling threshold t
    size, nwords, nlabels = r.take("<3i")
    _ntokens, prune_size = r.take("<2q")
    if size != nwords + nlabels or min(nwords, nlabels) < 0:
        raise FastTextFormatError("inconsistent dictionary sizes")
    words, labels = [], []
    for _ in range(size):
        word = r.cstring().decode("utf-8", errors="replace")
        _count, kind = r.take("<qb")
        (words if kind == 0 else labels).append(word)
    if len(words) != nwords:
        raise FastTextFormatError("dictionary entry types do not match its word count")
    bucket_rows = None
    if prune_size >= 0:  # -1: never pruned; 0: every n-gram pruned; > 0: bucket -> new n-gram index
        pairs = r.array("<i4", 2 * prune_size).reshape(-1, 2).astype(np.int64)
        bucket_rows = np.full(max(bucket, 1), -1, dtype=np.int64)
        bucket_rows[pairs[:, 0]] = nwords + pairs[:, 1]
    quant_input = r.take("<?")
    input_ = _matrix(r, quant_input)
    quant_output = r.take("<?")
    output = _matrix(r, quant_output)
    if r.pos != len(r.data):
        raise FastTextFormatError(f"{len(r.data) - r.pos} unexpected bytes after the output matrix")
    if input_.shape[1] != dim or output.shape != (nlabels, dim):
        raise FastTextFormatError("matrix shapes do not match the model's dimension and labels")
    return FastTextArrays(dim=dim, word_ngrams=word_ngrams, loss=_LOSS.get(loss, str(loss)),
                          model=_MODEL.get(model, str(model)), bucket=bucket, minn=minn, maxn=maxn, words=words,
                          labels=labels, bucket_rows=bucket_rows, input=input_, output=output,
                          quantized=bool(quant_input or quant_output))
