"""The classifier model: a fastText prompt model, an optional response-kind model, an optional embedding layer,
their thresholds, and the one place that turns text into decisions (``ClassifierModel.predict``).

A model directory holds ``prompt.bin`` (multi-label, one-vs-all over S00..S14), optionally ``kind.bin``
(response kind: refusal / safe_completion / helpful / harmful, softmax), ``model.json`` (label order,
per-dimension thresholds calibrated on validation data, the harmful-vs-safe threshold, training metadata) and
optionally the embedding layer's ``embed.npz`` / ``embed.json``. The .bin files are fastText's own format;
curate reads them itself (classify/fasttext/), so loading and predicting need no fastText.
"""
from __future__ import annotations

import gc
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import polars as pl

from curate.classify.embedding import layer as embed_layer
from curate.classify.fasttext.classifier import ModelError, TextClassifier
from curate.classify.labels import SAFE
from curate.classify.specific import prefer_specific

__all__ = ["ClassifierModel", "Decisions", "ModelError", "TextClassifier", "default_model_dir", "load_model"]

FORMAT_VERSION = 1
EMBED_CHUNK = 8192  # texts encoded at a time by the embedding layer (a multiple of the encoder's batch of 512)


@contextmanager
def _no_cyclic_gc():
    """Pause the cyclic garbage collector while building one list per row: its rescans made this 10x slower
    (docs/benchmarks-notes.md), and lists of strings cannot form cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Decisions(NamedTuple):
    scores: np.ndarray  # per row: fastText's scores, or the blended ones where ``blended``
    categories: list[list[str]]
    harmful: np.ndarray
    blended: np.ndarray  # bool per row: the embedding layer served it (its thresholds decided it)

    def harm_thresholds(self, model, langs: Sequence[str | None] | None = None,
                        harmful_threshold: float | None = None) -> np.ndarray:
        """Per-row harmful threshold on the scale of that row's scores (the layer's for blended rows)."""
        n = len(self.scores)
        out = model.harm_thresholds(n, langs, harmful_threshold)
        if self.blended.any():
            out = np.where(self.blended, model.embed.decider(model).harm_thresholds(n, langs, harmful_threshold), out)
        return out


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
    # catch-all dimensions (taxonomy's candidates.yaml) and the specific-over-generic ratio (specific.py; None = off)
    generic: list[str] = field(default_factory=list)
    generic_ratio: float | None = None

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

    def best_harm_dimension(self, scores: np.ndarray) -> list[str]:
        """Per row, the harm dimension with the highest score (whether or not the row is flagged harmful)."""
        idx = [i for i, label in enumerate(self.labels) if label != SAFE]
        if not idx:
            return [SAFE] * len(scores)
        return np.array(self.labels, dtype=object)[np.asarray(idx)[scores[:, idx].argmax(axis=1)]].tolist()

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
        chosen = prefer_specific(chosen, harm, self.harm_labels, self.generic, self.generic_ratio)
        rows, cols = np.nonzero(chosen)  # row-major: each row's dimensions come out in label order
        names = np.array(self.labels, dtype=object)[harm_idx][cols]
        with _no_cyclic_gc():
            cats: list[list[str]] = [[] for _ in range(len(scores))]
            for row, name in zip(rows.tolist(), names.tolist()):
                cats[row].append(name)
        return cats, harmful

    def uncertain_rows(self, scores: np.ndarray, band: float, langs: Sequence[str | None] | None = None) -> np.ndarray:
        """Rows fastText is unsure about: harm score within ``band`` of the harmful threshold, or the two best
        dimensions within ``band`` of each other."""
        harm = self.harm_score(scores)
        near = np.abs(harm - self.harm_thresholds(len(scores), langs)) < band
        dims = np.sort(scores[:, [i for i, label in enumerate(self.labels) if label != SAFE]], axis=1)
        close = (dims[:, -1] - dims[:, -2] < band) if dims.shape[1] >= 2 else np.zeros(len(scores), dtype=bool)
        return near | close

    def predict(self, texts: pl.Series, langs: Sequence[str | None] | None = None, *,
                overrides: dict[str, float] | None = None, band: float | None = None,
                harmful_threshold: float | None = None,
                progress: Callable[[int], None] = lambda n: None) -> Decisions:
        """Scores, dimensions and harmful flags for ``texts``, and which rows the embedding layer served: the
        cascade decision, for the classify stage and for evaluation alike.

        Without an embedding layer: fastText alone. With one: blended scores decided with the layer's thresholds,
        for every row (``band`` None) or, as a cascade, only for the rows ``uncertain_rows`` picks with ``band``
        (the encoder is about 1000x slower than fastText); the other rows keep fastText's own decision.
        ``progress(n)`` is told of rows as they are decided: fastText's at once, the encoder's chunk by chunk."""
        scores = self.prompt.scores(texts)
        layer = self.embed
        blended = np.zeros(len(scores), dtype=bool)
        if layer is None:
            cats, harmful = self.decide(scores, overrides, harmful_threshold, langs)
            progress(len(scores))
            return Decisions(scores, cats, harmful, blended)
        rows = np.arange(len(scores)) if band is None else np.flatnonzero(self.uncertain_rows(scores, band, langs))
        cats, harmful = (self.decide(scores, overrides, harmful_threshold, langs) if band is not None
                         else ([[]] * len(scores), np.zeros(len(scores), bool)))
        cats = list(cats)
        progress(len(scores) - len(rows))
        if len(rows):
            part = self._blend_in_chunks(layer, scores[rows], texts.gather(rows), progress)
            sub_langs = [langs[i] for i in rows] if langs is not None else None
            sub_cats, sub_harmful = layer.decider(self).decide(part, overrides, harmful_threshold, sub_langs)
            scores = scores.copy()
            scores[rows] = part
            harmful = np.asarray(harmful).copy()
            harmful[rows] = sub_harmful
            blended[rows] = True
            for i, c in zip(rows.tolist(), sub_cats):
                cats[i] = c
        return Decisions(scores, cats, harmful, blended)

    def _blend_in_chunks(self, layer, ft_scores: np.ndarray, texts: pl.Series,
                         progress: Callable[[int], None]) -> np.ndarray:
        """The layer's blended scores, the texts encoded a chunk at a time: their sentence vectors (2 KB a text)
        are never all in memory (400k band rows of a million-row run held 1.6 GB at once), nor kept in the
        encoder's cache (a run encodes each text once; the cache serves training, where texts come back)."""
        out = np.empty_like(ft_scores)
        for start in range(0, len(ft_scores), EMBED_CHUNK):
            stop = min(start + EMBED_CHUNK, len(ft_scores))
            vectors = layer.vectors(texts.slice(start, stop - start).to_list(), cache=False)
            out[start:stop] = layer.blend(ft_scores[start:stop], vectors, self.labels)
            progress(stop - start)
        return out

    def scores_json(self, scores: np.ndarray) -> pl.Series:
        """Per row, the JSON the stage stores in ``category_scores``: exactly
        ``json.dumps({label: round(float(v), 4) ...}, sort_keys=True)``, built column-wise by polars (the
        per-row ``json.dumps`` was a third of the stage's time). Float32 scores in [0, 1] times 10^4 never
        land within a double's rounding error of .5 unless exactly on it (then both round half to even), so
        ``rint`` gives Python's ``round``; other rows (out of range, not finite) take the per-row path.
        One label column at a time, and a polars column out (no Python string per row): on a million rows
        the matrices and the list took 800 MB at once."""
        order = sorted(range(len(self.labels)), key=lambda i: self.labels[i])
        if not order:
            return pl.Series("category_scores", ["{}"] * len(scores), dtype=pl.Utf8)
        table = pl.Series([repr(k / 10_000) for k in range(10_001)], dtype=pl.Utf8)
        exact = np.ones(len(scores), dtype=bool)
        parts: list[Any] = []
        for j, i in enumerate(order):
            values = np.asarray(scores[:, i], dtype=np.float64)
            scaled = values * 1e4
            exact &= np.isfinite(values) & (values >= 0) & (values <= 1)
            if scores.dtype != np.float32:  # wider floats can sit next to a tie: those rows round in Python
                exact &= ~(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-9)
            steps = np.clip(np.nan_to_num(np.rint(scaled)), 0, 10_000).astype(np.int32)  # rows not exact: redone below
            parts += [pl.lit(("{" if j == 0 else ", ") + json.dumps(self.labels[i]) + ": "), pl.lit(table.gather(steps))]
        out = pl.select(pl.concat_str(parts + [pl.lit("}")]).alias("category_scores"))["category_scores"]
        redo = np.flatnonzero(~exact)
        if len(redo):
            out = out.scatter(redo, [json.dumps({self.labels[i]: round(float(v), 4) for i, v in enumerate(scores[r])},
                                                sort_keys=True) for r in redo.tolist()])
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
        if self.generic_ratio is not None:
            info["specific_over_generic"] = {"generic": self.generic, "ratio": self.generic_ratio}
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
        rule = info.get("specific_over_generic") or {}
        return cls(prompt, {k: float(v) for k, v in info.get("thresholds", {}).items()},
                   float(info.get("harmful_threshold", 0.5)), kind,
                   harmful_by_lang={k: float(v) for k, v in (info.get("harmful_thresholds_by_lang") or {}).items()},
                   meta=info.get("meta", {}), embed=embed_layer.load_layer(directory),
                   generic=list(rule.get("generic", [])),
                   generic_ratio=float(rule["ratio"]) if rule.get("ratio") is not None else None)


def default_model_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "models" / "default"


@lru_cache(maxsize=4)
def _load_cached(path: str) -> ClassifierModel:
    return ClassifierModel.load(path)


def load_model(model_dir: Path | None = None) -> ClassifierModel:
    """The model in ``model_dir`` (None = the shipped default), loaded once per process."""
    return _load_cached(str(Path(model_dir or default_model_dir()).resolve()))
