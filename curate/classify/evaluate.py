"""Score a model on labelled records: per-dimension P/R/F1, macro-F1, binary harmful-vs-safe, by language."""
from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from curate import records
from curate.classify import metrics
from curate.classify.confusion import as_dict, confusion, top_predictions
from curate.classify.labels import prompt_targets
from curate.classify.model import ClassifierModel
from curate.errors import UsageError


def predictions(model: ClassifierModel, df: pl.DataFrame, overrides: dict[str, float] | None = None,
                band: float | None = None) -> pl.DataFrame:
    """``df`` plus ``pred`` (dimension ids, [] = S00), ``pred_top`` (the best of them, see confusion.py),
    ``pred_best`` (the best harm dimension, flagged or not) and ``pred_harmful`` from the prompt model (blended with the embedding layer when the model has one), with the
    ``scores``, ``harm_score`` and ``harm_threshold`` they came from. ``band``: as ``ClassifierModel.predict``
    (None: every row blended with the embedding layer; the classify stage uses a cascade band)."""
    langs = df["lang"].to_list()
    decided = model.predict(df["prompt"], langs, overrides=overrides, band=band)
    return df.with_columns(pl.Series("pred", decided.categories, dtype=pl.List(pl.Utf8)),
                           pl.Series("pred_top", top_predictions(model.labels, decided.scores, decided.categories),
                                     dtype=pl.Utf8),
                           pl.Series("pred_best", model.best_harm_dimension(decided.scores), dtype=pl.Utf8),
                           pl.Series("pred_harmful", decided.harmful, dtype=pl.Boolean),
                           pl.Series("scores", decided.scores.astype(np.float32),
                                     dtype=pl.Array(pl.Float32, len(model.labels))),
                           pl.Series("harm_score", model.harm_score(decided.scores), dtype=pl.Float32),
                           pl.Series("harm_threshold", decided.harm_thresholds(model, langs), dtype=pl.Float32))


def score_frame(pred: pl.DataFrame, labels: list[str]) -> dict[str, Any]:
    """Metrics for a frame with ``target`` (or null), ``prompt_harmful``, ``pred``, ``pred_harmful`` and ``lang``;
    with ``pred_top``, also the confusion of the top prediction (``confusion.as_dict`` form)."""
    out: dict[str, Any] = {}
    for name, part in [("all", pred), ("zh", pred.filter(pl.col("lang") == "zh")),
                       ("en", pred.filter(pl.col("lang") == "en"))]:
        if part.height == 0:
            continue
        dims = part.filter(pl.col("target").is_not_null())
        harm = part.filter(pl.col("prompt_harmful").is_not_null())
        out[name] = {
            "dimensions": metrics.multilabel(dims["target"].to_list(), dims["pred"].to_list(), labels),
            "binary": metrics.binary(harm["prompt_harmful"].to_list(), harm["pred_harmful"].to_list()),
        }
    if "pred_top" in pred.columns and out:
        out["confusion"] = as_dict(confusion(pred))
    return out


def evaluate_frame(model: ClassifierModel, df: pl.DataFrame, overrides: dict[str, float] | None = None) -> dict[str, Any]:
    """Evaluate on every kept row that has a dimension target or a known harmful flag."""
    kept = records.kept(df)
    targets = prompt_targets(kept).select("id", "target")
    rows = kept.join(targets, on="id", how="left").filter(
        pl.col("target").is_not_null() | pl.col("prompt_harmful").is_not_null())
    if rows.height == 0:
        raise UsageError("nothing to evaluate: no row has categories or a prompt_harmful flag")
    result = score_frame(predictions(model, rows, overrides), model.labels)
    result["rows"] = rows.height
    return result


def kind_report(model: ClassifierModel, df: pl.DataFrame) -> dict[str, Any] | None:
    from curate.classify.labels import KINDS, kind_targets

    rows = kind_targets(df)
    if model.kind is None or rows.height == 0:
        return None
    pred, _ = model.kinds(rows["response"])
    gold = rows["response_kind"].to_list()
    per = {k: metrics.binary([g == k for g in gold], [p == k for p in pred]) for k in KINDS if k in gold}
    return {"accuracy": round(float(np.mean([g == p for g, p in zip(gold, pred)])), 4),
            "macro_f1": round(float(np.mean([v["f1"] for v in per.values()])), 4), "per_kind": per,
            "rows": rows.height}
