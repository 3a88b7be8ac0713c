"""The teacher encoder's vectors of a whole corpus, computed once and kept on disk (npz: texts, vectors).

Encoding is the slow part of every benchmark that fits embedding heads (~250 texts/s per idle core); with the
vectors loaded into the shared encoder's cache, training many models on the same rows costs no encoding.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl

from curate.classify.embedding.encoder import DIM, shared_encoder
from curate.classify.train import taxonomy_examples


def encode_all(df: pl.DataFrame, tax, path: Path, log) -> None:
    """Every prompt and taxonomy line encoded once, kept at ``path`` (npz) and loaded into the encoder's cache."""
    encode_texts(list(dict.fromkeys(df["prompt"].fill_null(" ").to_list() + taxonomy_examples(tax, 1)[0])), path, log)


def encode_texts(texts: list[str], path: Path, log, chunk: int = 20_000) -> np.ndarray:
    """The teacher's vectors of ``texts``, those not in ``path`` yet encoded and the file rewritten after every
    ``chunk`` texts (an interrupted encoding keeps what it did)."""
    encoder = shared_encoder()
    if path.is_file():
        encoder.remember(*read(path))
    texts = list(dict.fromkeys(texts))
    t0 = time.perf_counter()
    vectors = [np.zeros((0, DIM), dtype=np.float32)]
    for start in range(0, len(texts), chunk):
        vectors.append(encoder.encode(texts[start:start + chunk]))
        _write(path, texts[:start + chunk], np.concatenate(vectors))
        log(f"encoded {min(start + chunk, len(texts)):,} of {len(texts):,} texts, {time.perf_counter() - t0:.0f}s "
            "(cached ones are free)")
    return np.concatenate(vectors)


def _write(path: Path, texts: list[str], vectors: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = [t.encode("utf-8") for t in texts]  # one byte string: a fixed-width text array took 1.2 GB
    np.savez(path, utf8=np.frombuffer(b"".join(encoded), dtype=np.uint8),
             offsets=np.cumsum([0] + [len(b) for b in encoded]), vectors=vectors.astype(np.float16))


def read(path: Path) -> tuple[list[str], np.ndarray]:
    """(texts, vectors) of a cache file (also the older layout with a text array)."""
    with np.load(path, allow_pickle=False) as data:
        if "texts" in data:
            return [str(t) for t in data["texts"]], data["vectors"]
        raw, offsets = data["utf8"].tobytes(), data["offsets"]
        return [raw[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])], data["vectors"]
