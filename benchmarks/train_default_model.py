"""Train the default classifier shipped in curate/models/default from permissively licensed data only.

    python benchmarks/train_default_model.py [--out curate/models/default] [--loso]

Sources: every dataset in ../shared/data except S-Eval (CC BY-NC-SA). Labels come from curate's own collect
stage and the default taxonomy mappings. Response kinds: XSTest completions carry human refusal labels,
GSM8K answers are helpful, STAR-1 answers are refusals or safe completions (split by a refusal phrase in the
opening of the answer, see ``star1_kinds``). Training is single-threaded, so the model is reproducible.
Writes the model, its metrics and curate/models/MODEL_CARD.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shared_corpus  # noqa: E402

from curate.classify.evaluate import kind_report, predictions, score_frame  # noqa: E402
from curate.classify.train import TrainConfig, split_validation, train_model  # noqa: E402
from curate.taxonomy import Taxonomy  # noqa: E402

REFUSAL = r"(?i)\b(can(?:'|no|’)t|won(?:'|’)t|unable to|not able to) (assist|help|provide|comply|support|fulfil)"
DEFAULT_CONFIG = dict(quantize_cutoff=100_000, threads=1, seed=0)


def star1_kinds(df: pl.DataFrame) -> pl.DataFrame:
    """STAR-1 answers have no kind label: a refusal phrase in the first 300 characters means refusal,
    otherwise the answer helps safely (resources, safe information): safe_completion."""
    is_star = (pl.col("source") == "star1") & pl.col("response").is_not_null() & pl.col("response_kind").is_null()
    kind = pl.when(pl.col("response").str.slice(0, 300).str.contains(REFUSAL)).then(pl.lit("refusal")) \
        .otherwise(pl.lit("safe_completion"))
    return df.with_columns(pl.when(is_star).then(kind).otherwise(pl.col("response_kind")).alias("response_kind"))


def corpus(log) -> pl.DataFrame:
    df = shared_corpus.cached(shared_corpus.PERMISSIVE, shared_corpus.REPO / ".cache" / "permissive_corpus.parquet",
                              log=log)
    return star1_kinds(df.filter(pl.col("source").is_in(shared_corpus.PERMISSIVE)))


def summary(result: dict) -> dict:
    return {lang: {"macro_f1": result[lang]["dimensions"]["macro_f1"], "binary_f1": result[lang]["binary"]["f1"],
                   "binary_precision": result[lang]["binary"]["precision"],
                   "binary_recall": result[lang]["binary"]["recall"]}
            for lang in ("zh", "en", "all") if lang in result}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=shared_corpus.REPO / "curate" / "models" / "default")
    ap.add_argument("--loso", action="store_true", help="also run leave-one-source-out (slow: one model per source)")
    args = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    df = corpus(log)
    tax = Taxonomy.load()
    config = TrainConfig(**DEFAULT_CONFIG)
    metrics: dict = {"sources": dict(df.group_by("source").len().sort("source").iter_rows())}

    log("random split (80/20 by id hash) ...")
    train, test = split_validation(df, 0.2, seed=7)
    model = train_model(train, tax, config)
    from classify_bench import eval_rows

    metrics["random_split"] = summary(score_frame(predictions(model, eval_rows(test)), model.labels))
    metrics["random_split_kind"] = kind_report(model, test)
    log(json.dumps(metrics["random_split"]))
    if args.loso:
        from classify_bench import loso

        res = loso(df, tax, TrainConfig(**{**DEFAULT_CONFIG, "threads": 2}), log)
        metrics["loso_pooled"] = summary(res["pooled"])
        metrics["loso_per_source"] = res["per_source"]
        metrics["loso_mean"] = res["mean"]

    log("final model on all permissive data ...")
    t0 = time.perf_counter()
    final = train_model(df, tax, config)
    final.meta["metrics"] = metrics
    final.meta["training_data"] = {"sources": metrics["sources"], "excluded": sorted(shared_corpus.NON_COMMERCIAL)}
    final.save(args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    log(f"saved {args.out} ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f}s")
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({"size_mb": round(size / 1e6, 2), **{k: v for k, v in metrics.items()
                                                             if k != "loso_per_source"}}, indent=1))


if __name__ == "__main__":
    main()
