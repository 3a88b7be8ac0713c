"""fastText text classifiers and the model directory that stores them with their thresholds.

A model directory holds ``prompt.bin`` (multi-label, one-vs-all over S00..S14), optionally ``kind.bin``
(response kind: refusal / safe_completion / helpful / harmful, softmax) and ``model.json`` (label order,
per-dimension thresholds calibrated on validation data, the harmful-vs-safe threshold, training metadata).
The .bin files are fastText's own format (plain or quantised) and are what fastText saves; curate reads them
itself (fasttext.format, fasttext.predictor), so a model retrained with fastText needs no conversion and loading needs no fastText.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl

from curate.classify.embedding import layer as embed_layer
from curate.classify.fasttext.format import read as read_fasttext
from curate.config import ConfigError
from curate.classify.fasttext.tokens import prepare
from curate.classify.labels import SAFE

PREFIX = "__label__"
FORMAT_VERSION = 1

# fastText settings that held up best on leave-one-source-out runs (see benchmarks/classify_bench.py).
PROMPT_PARAMS: dict[str, Any] = {"loss": "ova", "epoch": 25, "lr": 0.5, "wordNgrams": 2, "dim": 64,
                                 "minn": 3, "maxn": 5, "bucket": 200_000, "minCount": 1}
KIND_PARAMS: dict[str, Any] = {"loss": "softmax", "epoch": 20, "lr": 0.2, "wordNgrams": 2, "dim": 32,
                               "minn": 0, "maxn": 0, "bucket": 200_000, "minCount": 1}
# fastText 0.9/0.10 intermittently stops with "Encountered NaN" on small files when the hash bucket is small
# (measured: 4-9 failures in 30 runs with bucket=20k, none with 200k); keep bucket >= 200k.


class ModelError(ConfigError):
    """A model directory is missing, incomplete or from an incompatible version; the message names the path."""


def _fasttext():
    import fasttext

    fasttext.FastText.eprint = lambda *_a, **_k: None  # silence the load-time warning of fasttext 0.9.x
    return fasttext


# fastText's training depends on the state of the process it runs in (measured: the same file and seed gave
# another model, worse or with NaN weights, in a long test process or after the sentence encoder had run,
# and the same model every time in a fresh one). Each training therefore runs in a fresh Python process:
# ~0.1 s more, and `make model` is reproducible whatever ran before.
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


@contextmanager
def _no_cyclic_gc():
    """Pause the cyclic garbage collector while building one list per row: each 700 new containers trigger a
    collection that rescans the survivors, which made 100k empty lists cost 0.14 s instead of 0.01 s (lists
    of strings cannot form cycles, so nothing is missed)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class ClassifierModel:
    """The prompt model, the optional response-kind model, thresholds and metadata."""

    prompt: TextClassifier
    thresholds: dict[str, float]
    harmful_threshold: float = 0.5
    kind: TextClassifier | None = None
    harmful_by_lang: dict[str, float] = field(default_factory=dict)  # calibrated per language where data allowed
    meta: dict[str, Any] = field(default_factory=dict)
    embed: Any = None  # embed_layer.EmbeddingLayer: sentence-vector heads blended with fastText, or None

    @property
    def labels(self) -> list[str]:
        return self.prompt.labels

    @property
    def harm_labels(self) -> list[str]:
        return [label for label in self.labels if label != SAFE]

    def threshold_vector(self, overrides: dict[str, float] | None = None) -> np.ndarray:
        merged = {**self.thresholds, **(overrides or {})}
        return np.array([merged.get(label, 0.5) for label in self.labels], dtype=np.float32)

    def harm_score(self, scores: np.ndarray) -> np.ndarray:
        """Probability-like harm score per row: the highest harm-dimension score."""
        idx = [i for i, label in enumerate(self.labels) if label != SAFE]
        return scores[:, idx].max(axis=1) if idx else np.zeros(len(scores), dtype=np.float32)

    def harm_thresholds(self, n: int, langs: Sequence[str | None] | None = None,
                        harmful_threshold: float | None = None) -> np.ndarray:
        """Per-row harmful threshold: the override, else the row language's calibrated one, else the global one."""
        if harmful_threshold is not None:
            return np.full(n, harmful_threshold, dtype=np.float32)
        if not langs or not self.harmful_by_lang:
            return np.full(n, self.harmful_threshold, dtype=np.float32)
        return np.array([self.harmful_by_lang.get(lang or "", self.harmful_threshold) for lang in langs],
                        dtype=np.float32)

    def decide(self, scores: np.ndarray, overrides: dict[str, float] | None = None,
               harmful_threshold: float | None = None,
               langs: Sequence[str | None] | None = None) -> tuple[list[list[str]], np.ndarray]:
        """Dimensions above their threshold and the harmful flag per row.

        A harmful row gets at least its best dimension; a safe row gets none (S00).
        """
        t_harm = self.harm_thresholds(len(scores), langs, harmful_threshold)
        harm_idx = np.array([i for i, label in enumerate(self.labels) if label != SAFE], dtype=np.int64)
        harmful = self.harm_score(scores) >= t_harm
        if not len(harm_idx):
            return [[] for _ in range(len(scores))], harmful
        harm = scores[:, harm_idx]
        chosen = (harm >= self.threshold_vector(overrides)[harm_idx][None, :]) & harmful[:, None]
        empty = harmful & ~chosen.any(axis=1)
        chosen[np.flatnonzero(empty), harm.argmax(axis=1)[empty]] = True
        rows, cols = np.nonzero(chosen)  # row-major: each row's dimensions come out in label order
        names = np.array(self.labels, dtype=object)[harm_idx][cols]
        with _no_cyclic_gc():
            cats: list[list[str]] = [[] for _ in range(len(scores))]
            for row, name in zip(rows.tolist(), names.tolist()):
                cats[row].append(name)
        return cats, harmful

    def scores_json(self, scores: np.ndarray) -> list[str]:
        """Per row, the JSON the stage stores in ``category_scores``: exactly
        ``json.dumps({label: round(float(v), 4) ...}, sort_keys=True)``, built column-wise by polars (the
        per-row ``json.dumps`` took a third of the classify stage). Float32 scores in [0, 1] times 10^4 never
        land within a double's rounding error of .5 unless exactly on it (then both round half to even), so
        ``rint`` gives Python's ``round``; other rows (out of range, not finite) take the per-row path."""
        order = sorted(range(len(self.labels)), key=lambda i: self.labels[i])
        values = np.asarray(scores, dtype=np.float64)[:, order]
        scaled = values * 1e4
        steps = np.rint(scaled)
        exact = np.isfinite(values).all(axis=1) & (values >= 0).all(axis=1) & (values <= 1).all(axis=1)
        if scores.dtype != np.float32:  # wider floats can sit next to a tie: those rows round in Python
            exact &= ~(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-9).any(axis=1)
        table = pl.Series([repr(k / 10_000) for k in range(10_001)], dtype=pl.Utf8)
        steps = np.where(exact[:, None], steps, 0).astype(np.int64)
        parts: list[Any] = []
        for j, i in enumerate(order):
            parts += [pl.lit(("{" if j == 0 else ", ") + json.dumps(self.labels[i]) + ": "),
                      pl.lit(table.gather(steps[:, j]))]
        out = pl.select(pl.concat_str(parts + [pl.lit("}")]).alias("s"))["s"].to_list() if len(order) else \
            ["{}"] * len(values)
        for row in np.flatnonzero(~exact).tolist():
            out[row] = json.dumps({self.labels[i]: round(float(v), 4) for i, v in enumerate(scores[row])},
                                  sort_keys=True)
        return out

    def kinds(self, responses: Sequence[str] | pl.Series) -> tuple[list[str | None], np.ndarray]:
        """Response kind and its probability per response (None without a kind model)."""
        n = len(responses)
        if self.kind is None or n == 0:
            return [None] * n, np.zeros(n, dtype=np.float32)
        scores = self.kind.scores(responses)
        best = scores.argmax(axis=1)
        return [self.kind.labels[i] for i in best], scores[np.arange(n), best]

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.prompt.save(directory / "prompt.bin")
        if self.kind is not None:
            self.kind.save(directory / "kind.bin")
        elif (directory / "kind.bin").exists():
            os.remove(directory / "kind.bin")
        info = {"format_version": FORMAT_VERSION, "labels": self.prompt.labels, "thresholds": self.thresholds,
                "harmful_threshold": self.harmful_threshold, "harmful_thresholds_by_lang": self.harmful_by_lang,
                "kind_labels": self.kind.labels if self.kind is not None else None, "meta": self.meta}
        tmp = directory / "model.json.tmp"
        tmp.write_text(json.dumps(info, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, directory / "model.json")
        if self.embed is not None:
            self.embed.save(directory)
        else:
            for name in (embed_layer.HEADS_FILE, embed_layer.INFO_FILE):  # a stale layer would be read back
                (directory / name).unlink(missing_ok=True)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "ClassifierModel":
        directory = Path(directory)
        info_path = directory / "model.json"
        if not info_path.is_file() or not (directory / "prompt.bin").is_file():
            raise ModelError(f"{directory}: not a curate classifier model (needs model.json and prompt.bin); "
                             "train one with `curate classifier train`")
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{info_path}: not valid JSON: {exc}") from None
        if info.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{info_path}: format_version {info.get('format_version')!r}, this curate reads "
                             f"{FORMAT_VERSION}")
        prompt = TextClassifier.read(directory / "prompt.bin", list(info["labels"]))
        kind = None
        if info.get("kind_labels") and (directory / "kind.bin").is_file():
            kind = TextClassifier.read(directory / "kind.bin", list(info["kind_labels"]))
        return cls(prompt, {k: float(v) for k, v in info.get("thresholds", {}).items()},
                   float(info.get("harmful_threshold", 0.5)), kind,
                   harmful_by_lang={k: float(v) for k, v in (info.get("harmful_thresholds_by_lang") or {}).items()},
                   meta=info.get("meta", {}), embed=embed_layer.load_layer(directory))


def default_model_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "models" / "default"
