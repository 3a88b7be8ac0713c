"""The classify stage: fill harm dimensions, scores, the harmful flag and the response kind where the source
did not give them; keep source labels and record where the classifier disagrees; optionally send the rows
the classifier is unsure about to an LLM judge.
"""
from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field, field_validator

from curate import records
from curate.classify.embedding.layer import decide_texts
from curate.classify.label_judge import ask_judge, pick_candidates
from curate.classify.labels import SAFE
from curate.classify.model import ClassifierModel, default_model_dir
from curate.config import ConfigError
from curate.llm import LLMOptions, LLMStats
from curate.llm.config import BASE_URL_ENV, MODEL_ENV
from curate.stage import StageContext

NAME = "classify"


class ClassifyOptions(LLMOptions):
    model_dir: Path | None = Field(None, description="Classifier model directory (default: the model shipped "
                                   "with curate, curate/models/default).")
    threshold: list[str] = Field(default_factory=list, description="Override a dimension's threshold, as ID=VALUE "
                                 "(e.g. S03=0.4); repeatable.")
    harmful_threshold: float | None = Field(None, ge=0, le=1, description="Override the harmful-vs-safe threshold "
                                            "on the highest harm-dimension score.")
    embed_band: float = Field(0.3, ge=0, le=1, description="Rows fastText is unsure about (harm score within this "
                              "of its threshold, or the two best dimensions within it) are also scored by the "
                              "model's sentence-embedding layer, if it has one (about 250 rows/s per core): 0 = "
                              "fastText alone, 1 = every row.")
    judge: bool = Field(False, description="Send low-confidence rows to an LLM judge (needs base_url and model).")
    judge_margin: float = Field(0.15, ge=0, le=1, description="A row is low-confidence when its harm score is "
                                "within this distance of the harmful threshold.")
    judge_max_rows: int | None = Field(None, ge=0, description="Judge at most this many rows (the least "
                                       "confident first).")
    json_mode: str = Field("json_object", description="How the judge is asked for JSON: json_schema, "
                           "json_object or none.")

    @field_validator("threshold")
    @classmethod
    def _thresholds(cls, value: list[str]) -> list[str]:
        for item in value:
            key, sep, num = item.partition("=")
            try:
                ok = sep and key.strip() and 0.0 <= float(num) <= 1.0
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"threshold {item!r}: expected ID=VALUE with VALUE in [0, 1], e.g. S03=0.4")
        return value

    @field_validator("json_mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value not in ("json_schema", "json_object", "none"):
            raise ValueError("json_mode must be json_schema, json_object or none")
        return value

    def uses_llm(self) -> bool:
        return self.judge and super().uses_llm()

    def overrides(self) -> dict[str, float]:
        return {k.strip(): float(v) for k, _, v in (t.partition("=") for t in self.threshold)}


@lru_cache(maxsize=4)
def _load_model(path: str) -> ClassifierModel:
    return ClassifierModel.load(path)


def load_model(model_dir: Path | None) -> ClassifierModel:
    return _load_model(str(Path(model_dir or default_model_dir()).resolve()))


def run(df: pl.DataFrame, opts: ClassifyOptions, ctx: StageContext) -> pl.DataFrame:
    model = load_model(opts.model_dir)
    overrides = opts.overrides()
    unknown = sorted(set(overrides) - set(model.labels))
    if unknown:
        raise ConfigError(f"threshold override for {unknown}: the model's dimensions are {', '.join(model.labels)}")
    positions = np.flatnonzero(df["drop_reason"].is_null().to_numpy())
    rows = df[positions]
    with ctx.progress(len(positions), "classify") as bar:
        langs = rows["lang"].to_list()
        band = None if opts.embed_band >= 1 else opts.embed_band
        decided = decide_texts(model, rows["prompt"], overrides, langs, band=band,
                               harmful_threshold=opts.harmful_threshold)
        scores, pred_cats, pred_harm = decided.scores, decided.categories, decided.harmful
        harm_score = model.harm_score(scores)
        has_response = rows["response"].fill_null("").str.strip_chars().str.len_chars() > 0
        need_kind = (has_response & rows["response_kind"].is_null()).to_numpy()
        kinds = [None] * rows.height
        kind_scores = np.zeros(rows.height, dtype=np.float32)
        if need_kind.any():
            found, probs = model.kinds(rows["response"].filter(pl.Series(need_kind)))
            for j, i in enumerate(np.flatnonzero(need_kind)):
                kinds[i], kind_scores[i] = found[j], probs[j]
        bar.advance(len(positions))
    harm_idx = [i for i, label in enumerate(model.labels) if label != SAFE]
    json_scores = model.scores_json(scores)
    t_harm = decided.harm_thresholds(model, langs, opts.harmful_threshold)  # the judge's distance is on this scale

    out = {name: rows[name].to_list() for name in
           ("categories", "category_scores", "prompt_harmful", "response_kind", "label_origin")}
    meta: list[dict[str, Any]] = []
    counts: Counter = Counter()
    for i in range(rows.height):
        src_cats = out["categories"][i] or []
        src_harm = out["prompt_harmful"][i]
        info: dict[str, Any] = {"harm_score": round(float(harm_score[i]), 4),
                                "predicted": pred_cats[i] or [SAFE]}
        if decided.blended[i]:  # scored by fastText and the sentence-embedding layer together
            info["embedding_layer"] = True
            counts["embedding_layer"] += 1
        filled = []
        if out["category_scores"][i] is None:
            out["category_scores"][i] = json_scores[i]
        if not src_cats:
            if src_harm is True:  # the source says harmful but not how: the best dimensions
                cats = pred_cats[i] or [model.labels[harm_idx[int(np.argmax(scores[i, harm_idx]))]]]
            elif src_harm is False:
                cats = []
            else:
                cats = pred_cats[i]
            if cats:
                out["categories"][i] = cats
                out["label_origin"][i] = "classifier"
                filled.append("categories")
        else:
            src_set, pred_set = set(src_cats), set(pred_cats[i] or [SAFE])
            if src_set != pred_set:
                info["disagree_categories"] = {"source": sorted(src_set), "classifier": sorted(pred_set)}
                counts["disagree_categories"] += 1
        if src_harm is None:
            out["prompt_harmful"][i] = bool(pred_harm[i])
            filled.append("prompt_harmful")
            if out["label_origin"][i] is None:
                out["label_origin"][i] = "classifier"
        elif bool(src_harm) != bool(pred_harm[i]):
            info["disagree_harmful"] = {"source": bool(src_harm), "classifier": bool(pred_harm[i])}
            counts["disagree_harmful"] += 1
        if kinds[i] is not None:
            out["response_kind"][i] = kinds[i]
            info["kind_score"] = round(float(kind_scores[i]), 4)
            filled.append("response_kind")
        info["filled"] = filled
        for name in filled:
            counts[f"filled_{name}"] += 1
        meta.append(info)

    if opts.judge:
        _judge(rows, out, meta, harm_score, t_harm, opts, ctx, counts, model)

    updated = rows.with_columns(
        pl.Series("categories", out["categories"], dtype=pl.List(pl.Utf8)),
        pl.Series("category_scores", out["category_scores"], dtype=pl.Utf8),
        pl.Series("prompt_harmful", out["prompt_harmful"], dtype=pl.Boolean),
        pl.Series("response_kind", out["response_kind"], dtype=pl.Utf8),
        pl.Series("label_origin", out["label_origin"], dtype=pl.Utf8),
    )
    updated = records.with_stage_meta(updated, NAME, meta)
    result = _put_back(df, updated, positions)
    ctx.stats.update({"rows": df.height, "classified": len(positions), **dict(counts),
                      "model": str(Path(opts.model_dir or default_model_dir())),
                      "predicted": dict(Counter(c for cats in pred_cats for c in (cats or [SAFE])))})
    return result


def _put_back(df: pl.DataFrame, updated: pl.DataFrame, positions: np.ndarray) -> pl.DataFrame:
    """``df`` with the rows at ``positions`` replaced by ``updated`` (same order, same ids)."""
    if len(positions) == df.height:
        return updated
    untouched = df.with_row_index("_pos").filter(~pl.col("_pos").is_in(positions.tolist()))
    changed = updated.with_columns(pl.Series("_pos", positions, dtype=pl.UInt32))
    return pl.concat([untouched, changed.select(untouched.columns)]).sort("_pos").drop("_pos")


def _judge(rows: pl.DataFrame, out: dict[str, list], meta: list[dict[str, Any]], harm_score: np.ndarray,
           t_harm: np.ndarray, opts: ClassifyOptions, ctx: StageContext, counts: Counter, model: ClassifierModel) -> None:
    """Ask the LLM judge about classifier-labelled rows near the harmful threshold; keep labels on failure."""
    from curate.taxonomy import Taxonomy

    if not opts.endpoint():
        ctx.log(f"[classify] judge skipped: no endpoint (set {BASE_URL_ENV} and {MODEL_ENV} or --base-url/--model)")
        counts["judge_skipped_no_endpoint"] = 1
        return
    eligible = [bool(meta[i]["filled"]) and out["label_origin"][i] == "classifier" for i in range(rows.height)]
    candidates = pick_candidates(harm_score, t_harm, opts.judge_margin, eligible, opts.judge_max_rows)
    counts["judge_candidates"] = len(candidates)
    if not candidates:
        return
    prompts, responses = rows["prompt"].to_list(), rows["response"].to_list()
    stats = LLMStats()
    with ctx.progress(len(candidates), "classify judge") as bar:
        answers = ask_judge(opts.llm_config(ctx.work_dir), Taxonomy.load(ctx.taxonomy_path),
                            [prompts[i] for i in candidates], [responses[i] for i in candidates],
                            mode=opts.json_mode, stats=stats, on_done=lambda _i, _o: bar.advance(1))
    for i, (verdict, problem, status) in zip(candidates, answers):
        if verdict is None:
            meta[i]["judge_error"] = (problem or "")[:300]
            counts["judge_failed" if status != "budget" else "judge_budget_stopped"] += 1
            continue
        out["prompt_harmful"][i] = verdict.harmful
        out["categories"][i] = verdict.categories if verdict.harmful else []
        out["label_origin"][i] = "judge"
        if "response_kind" in meta[i]["filled"] and verdict.response_kind:
            out["response_kind"][i] = verdict.response_kind
        meta[i]["judge"] = {"harmful": verdict.harmful, "categories": verdict.categories,
                            "response_kind": verdict.response_kind, "rationale": verdict.rationale[:300]}
        counts["judged"] += 1
    ctx.stats["judge_llm"] = stats.as_dict()
