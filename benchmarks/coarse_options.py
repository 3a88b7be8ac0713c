"""Quick leave-one-source-out loop for issue 21: how coarse source labels are treated, and the
specific-over-generic rule, measured on the embedding layer alone (sentence vectors encoded once), in minutes
instead of the hours a full fastText LOSO takes on a shared 2-core machine.

    python benchmarks/coarse_options.py [--modes generic,harm_only,partial] [--ratios none,0.5,0.7,0.9]
        [--out results.json] [--save-predictions DIR]

Per held-out source (family, as classify_bench.py): the embedding heads are fitted on every other source with the
coarse rows treated by each mode (curate/classify/coarse.py), then score the held-out rows. Thresholds are
calibrated for each source on the pooled held-out scores of the *other* sources (cross-source, like the shipped
model's), then every rule ratio decides the same scores. Reported per language: macro-F1, S05 precision, S05's
share of other dimensions' rows (confusion), harmful-flag recall and false positives on benign rows.
The fastText layer (weight 0.3 in the shipped blend) is not in this loop: classify_bench.py measures the whole model.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shared_corpus  # noqa: E402
from classify_bench import MIN_LOSO_ROWS, eval_rows  # noqa: E402

from curate.classify.confusion import confusion, sink_share, top_predictions  # noqa: E402
from curate.classify.embedding.encoder import shared_encoder  # noqa: E402
from curate.classify.evaluate import score_frame  # noqa: E402
from curate.classify.model import ClassifierModel, TextClassifier  # noqa: E402
from curate.classify.train import (TrainConfig, _fit_heads, _head_scores, _with_null_target, calibrate,  # noqa: E402
                                   training_rows)
from curate.taxonomy import Taxonomy  # noqa: E402


def heads_loso(df: pl.DataFrame, tax, labels: list[str], config: TrainConfig, log) -> pl.DataFrame:
    """Held-out rows of every source with the heads' scores (column ``scores``) from heads trained without it."""
    family = df["source"].replace(shared_corpus.FAMILY)
    df = df.with_columns(family.alias("_family"))
    held_out = eval_rows(df)
    sizes = held_out.group_by("_family").len()
    families = [f for f, n in sizes.sort("_family").iter_rows() if n >= MIN_LOSO_ROWS]
    parts = []
    for fam in families:
        t0 = time.perf_counter()
        train = df.filter(pl.col("_family") != fam).drop("_family")
        labelled, harm_only, report = training_rows(train, tax, config)
        heads = _fit_heads(pl.concat([labelled, _with_null_target(harm_only)]), labels, tax, config)
        rows = held_out.filter(pl.col("_family") == fam).drop("_family")
        scores = _head_scores(heads, rows["prompt"], labels)
        parts.append(rows.with_columns(pl.lit(fam).alias("family"),
                                       pl.Series("scores", scores, dtype=pl.Array(pl.Float32, len(labels)))))
        log(f"  {config.coarse} {fam}: {rows.height} rows, coarse {report.get('coarse_rows')} "
            f"({time.perf_counter() - t0:.0f}s)")
    return pl.concat(parts)


def decide_pooled(pred: pl.DataFrame, labels: list[str], tax, ratio: float | None) -> pl.DataFrame:
    """Each family decided with thresholds calibrated on the other families' held-out scores."""
    out = []
    for fam in pred["family"].unique(maintain_order=True).to_list():
        others = pred.filter(pl.col("family") != fam)
        mine = pred.filter(pl.col("family") == fam)
        model = ClassifierModel(TextClassifier(b"", labels), {label: 0.5 for label in labels},
                                generic=tax.generic, generic_ratio=ratio)
        calibrate(model, others.with_columns(pl.col("target").fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))),
                  others["scores"].to_numpy())
        scores = mine["scores"].to_numpy()
        cats, harmful = model.decide(scores, langs=mine["lang"].to_list())
        out.append(mine.with_columns(pl.Series("pred", cats, dtype=pl.List(pl.Utf8)),
                                     pl.Series("pred_harmful", harmful, dtype=pl.Boolean),
                                     pl.Series("pred_top", top_predictions(labels, scores, cats), dtype=pl.Utf8),
                                     pl.Series("harm_score", model.harm_score(scores), dtype=pl.Float32),
                                     pl.Series("harm_threshold", model.harm_thresholds(len(scores), mine["lang"].to_list()),
                                               dtype=pl.Float32)))
    return pl.concat(out)


def figures(decided: pl.DataFrame, labels: list[str], generic: list[str]) -> dict:
    result = score_frame(decided, labels)
    table = confusion(decided)
    sink = {g: sink_share(table, g) for g in generic}
    out = {}
    for lang in ("zh", "en"):
        if lang not in result:
            continue
        dims, binary = result[lang]["dimensions"], result[lang]["binary"]
        benign = decided.filter((pl.col("lang") == lang) & (pl.col("prompt_harmful") == False))  # noqa: E712
        out[lang] = {"macro_f1": dims["macro_f1"],
                     **{f"{g}_precision": dims["per_label"].get(g, {}).get("precision") for g in generic},
                     **{f"{g}_recall": dims["per_label"].get(g, {}).get("recall") for g in generic},
                     **{f"{g}_share_of_others": sink[g].get(lang) for g in generic},
                     "harmful_recall": binary["recall"],
                     "benign_flagged": round(float(benign["pred_harmful"].mean()), 4) if benign.height else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default="generic,harm_only,partial")
    ap.add_argument("--ratios", default="none,0.5,0.7,0.9")
    ap.add_argument("--corpus", type=Path, default=shared_corpus.REPO / ".cache" / "bench_corpus.parquet")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--save-predictions", type=Path, metavar="DIR")
    args = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    df = shared_corpus.cached(list(shared_corpus.PRESET_DIRS), args.corpus, log=log)
    df = df.filter(pl.col("source").is_in(shared_corpus.PERMISSIVE))
    tax = Taxonomy.load()
    labels = tax.all_ids
    t0 = time.perf_counter()
    shared_encoder().encode(df["prompt"].to_list())  # every text once; the heads' fits then read the cache
    log(f"encoded {df.height} prompts in {time.perf_counter() - t0:.0f}s")
    ratios = [None if r == "none" else float(r) for r in args.ratios.split(",")]
    results: dict = {}
    for mode in args.modes.split(","):
        pred = heads_loso(df, tax, labels, TrainConfig(embed_weight=0.7, coarse=mode), log)
        if args.save_predictions:
            args.save_predictions.mkdir(parents=True, exist_ok=True)
            pred.write_parquet(args.save_predictions / f"heads_{mode}.parquet")
        for ratio in ratios:
            name = f"{mode}, rule {ratio}" if ratio is not None else f"{mode}, no rule"
            results[name] = figures(decide_pooled(pred, labels, tax, ratio), labels, tax.generic)
            log(f"{name}: {json.dumps(results[name])}")
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
