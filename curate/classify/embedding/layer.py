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
from typing import Sequence

import numpy as np
import polars as pl

from curate.classify.embedding.encoder import ENCODERS, USEM3, EmbeddingHeads, Encoder, shared_encoder
from curate.classify.labels import SAFE
from curate.errors import UsageError

HEADS_FILE = "embed.npz"
INFO_FILE = "embed.json"


@dataclass
class EmbeddingLayer:
    heads: EmbeddingHeads
    weight: float = 0.7  # share of the embedding scores in the blend
    thresholds: dict[str, float] = field(default_factory=dict)  # calibrated on blended scores
    harmful_threshold: float = 0.5
    harmful_by_lang: dict[str, float] = field(default_factory=dict)
    encoder: str = USEM3  # the sentence encoder the heads were fitted on (encoder.ENCODERS); saved with them

    def vectors(self, texts: Sequence[str | None], cache: bool = True) -> np.ndarray:
        """Sentence vectors of ``texts`` from the encoder these heads were fitted on (``cache``: see Encoder.encode)."""
        return shared_encoder(self.encoder).encode(texts, cache=cache)

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
                "harmful_thresholds_by_lang": self.harmful_by_lang, "encoder": self.encoder}
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
                          {k: float(v) for k, v in (info.get("harmful_thresholds_by_lang") or {}).items()},
                          encoder_of(info, directory))


def encoder_of(info: dict, directory: Path) -> str:
    """The encoder named in embed.json; models saved before there was a choice wrote a description of usem3."""
    name = str(info.get("encoder", USEM3))
    name = USEM3 if name.startswith("usem3") else name
    if name not in ENCODERS:
        raise UsageError(f"{directory / INFO_FILE}: its heads were fitted on sentence encoder {name!r}, which this "
                         f"version of curate does not have (known: {', '.join(ENCODERS)})")
    return name


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
    texts, harmful, weight, dims = head_inputs(rows, extra_texts, extra_targets, extra_weight, cap, floor, seed)
    x = encoder.encode(texts)
    return EmbeddingHeads.fit(x, harmful, weight, dims, np.array([bool(d) for d in dims]), labels, l2=l2,
                              balance=balance)


def head_inputs(rows: pl.DataFrame, extra_texts: Sequence[str] = (), extra_targets: Sequence[Sequence[str]] = (),
                extra_weight: float = 10.0, cap: int = 2500, floor: int = 400,
                seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, list[list[str]]]:
    """What the heads learn from: texts, harmful flags, weights and harm dimensions per line (see ``fit_heads``)."""
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
    return texts, harmful, weight, dims + extra
