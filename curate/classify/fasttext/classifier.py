"""One fastText text classifier: the bytes of its .bin file (fastText's own format, plain or quantised), the
column order of its scores, training in a fresh process, and scoring with curate's own reader (format.py,
predictor.py), so loading and predicting need no fastText.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl

from curate.classify.fasttext.format import read as read_fasttext
from curate.classify.fasttext.tokens import prepare
from curate.config import ConfigError

PREFIX = "__label__"


class ModelError(ConfigError):
    """A model directory is missing, incomplete or from an incompatible version; the message names the path."""



def _fasttext():
    import fasttext

    fasttext.FastText.eprint = lambda *_a, **_k: None  # silence the load-time warning of fasttext 0.9.x
    return fasttext


# Each training runs in a fresh Python process: fastText's result depends on what the process did before
# (docs/benchmarks-notes.md), and `make model` must be reproducible.
_TRAIN_SCRIPT = (
    "import json, sys, fasttext\n"
    "a = json.loads(sys.argv[1])\n"
    "m = fasttext.train_supervised(a['path'], verbose=0, seed=a['seed'], thread=a['threads'], **a['params'])\n"
    "if a['cutoff']:\n"
    "    m.quantize(input=a['path'], qnorm=True, retrain=True, cutoff=a['cutoff'], thread=a['threads'], verbose=0)\n"
    "m.save_model(a['out'])\n"
)
TRAIN_ATTEMPTS = 3


def _train_once(path: Path, params: dict[str, Any], seed: int, threads: int, quantize_cutoff: int | None) -> bytes | None:
    """The bytes of a model trained (and quantised, with a cutoff) in a fresh process, or None when training
    diverged: fastText stopped with "Encountered NaN", or finished with NaN weights (such a model scores garbage)."""
    out = path.with_name("model.bin")
    args = json.dumps({"path": str(path), "seed": seed, "threads": threads, "params": params,
                       "cutoff": quantize_cutoff or 0, "out": str(out)})
    done = subprocess.run([sys.executable, "-c", _TRAIN_SCRIPT, args], capture_output=True, text=True)
    if done.returncode != 0:
        if "NaN" in done.stderr:
            return None
        raise RuntimeError(f"fastText training failed: {done.stderr.strip()[-500:]}")
    raw = out.read_bytes()
    arrays = read_fasttext(raw)
    return raw if np.isfinite(arrays.input).all() and np.isfinite(arrays.output).all() else None


@dataclass
class TextClassifier:
    """One fastText model (the bytes of its .bin file) plus the column order of its scores.

    Scoring reads the file's matrices with curate's own reader (fasttext.format, fasttext.predictor), quantised or not, so loading
    and predicting need no fastText; the fastText object is built from the bytes only where fastText itself
    is wanted (its own predict, as a reference, and losses the fast path does not cover).
    """

    raw: bytes
    labels: list[str]
    _fast: Any = field(default=None, repr=False)
    _ft: Any = field(default=None, repr=False)

    @classmethod
    def train(cls, texts: Sequence[str] | pl.Series, targets: Sequence[Sequence[str]], *, params: dict[str, Any],
              seed: int = 0, threads: int = 1, quantize_cutoff: int | None = None) -> "TextClassifier":
        lines = prepare(texts if isinstance(texts, pl.Series) else pl.Series(list(texts), dtype=pl.Utf8)).to_list()
        if not lines:
            raise ValueError("no training examples")
        with tempfile.TemporaryDirectory(prefix="curate-ft-") as tmp:
            path = Path(tmp) / "train.txt"
            with open(path, "w", encoding="utf-8") as fh:
                for line, target in zip(lines, targets):
                    fh.write(" ".join(PREFIX + t for t in target) + " " + line + "\n")
            for attempt in range(TRAIN_ATTEMPTS):  # a diverged training gets the next seed
                raw = _train_once(path, params, seed + attempt, threads, quantize_cutoff)
                if raw is not None:
                    break
            else:
                raise RuntimeError(f"fastText training diverged (NaN) with {TRAIN_ATTEMPTS} seeds from {seed}")
        labels = sorted(label[len(PREFIX):] for label in read_fasttext(raw).labels)
        return cls(raw, labels)

    @classmethod
    def read(cls, path: Path, labels: list[str]) -> "TextClassifier":
        """A saved model; the file is parsed here, so a broken or foreign file fails at load, not mid-run."""
        clf = cls(path.read_bytes(), labels)
        try:
            clf.predictor()
        except ValueError as exc:  # FastTextFormatError and unsupported models
            raise ModelError(f"{path}: cannot load the fastText model: {exc}") from None
        return clf

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.raw)
        os.replace(tmp, path)

    @property
    def ft(self) -> Any:
        """fastText's own model object, loaded from the same bytes on first use."""
        if self._ft is None:
            with tempfile.TemporaryDirectory(prefix="curate-ft-") as tmp:
                path = Path(tmp) / "model.bin"
                path.write_bytes(self.raw)
                self._ft = _fasttext().load_model(str(path))
        return self._ft

    def predictor(self) -> Any:
        """The numpy/numba scorer, or None for losses it does not cover (hierarchical softmax, negative sampling)."""
        if self._fast is None:
            from curate.classify.fasttext.predictor import FastPredictor  # numba loads here, not with every curate command

            arrays = read_fasttext(self.raw)
            self._fast = FastPredictor(arrays, self.labels) if arrays.loss in ("ova", "softmax") else False
        return self._fast or None

    def scores(self, texts: Sequence[str] | pl.Series) -> np.ndarray:
        """Probabilities, one row per text, columns in ``self.labels`` order."""
        series = texts if isinstance(texts, pl.Series) else pl.Series(list(texts), dtype=pl.Utf8)
        fast = self.predictor()
        if fast is not None:
            return np.clip(fast.scores(series), 0.0, 1.0)
        return self._ft_scores(prepare(series).to_list())

    def _ft_scores(self, lines: list[str]) -> np.ndarray:
        """fastText's own predict (the reference the fast path is tested against)."""
        out = np.zeros((len(lines), len(self.labels)), dtype=np.float32)
        if not lines:
            return out
        column = {PREFIX + label: i for i, label in enumerate(self.labels)}
        names, probs = self.ft.predict(lines, k=-1, threshold=0.0)
        for row, (ls, ps) in enumerate(zip(names, probs)):
            out[row, [column[label] for label in ls]] = ps
        return np.clip(out, 0.0, 1.0)
