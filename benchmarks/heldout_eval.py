"""A shipped classifier model on a source it never saw (S-Eval: CC BY-NC-SA, so never in the shipped model's
training data), with the specific-over-generic rule at several ratios: confusion, S05 precision and S05's share
of other dimensions' rows, per language.

    python benchmarks/heldout_eval.py [--model curate/models/default] [--source s_eval] [--per-lang 3000]
        [--ratios none,0.5,0.7,0.9] [--out results.json] [--plot confusion.png]

Rows are sampled per language (seed 0). The model decides as the classify stage does by default (fastText, and the
embedding layer for the rows fastText is unsure about, band 0.3). Needs ../shared/data.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shared_corpus  # noqa: E402
from classify_bench import eval_rows  # noqa: E402

from curate.classify.confusion import confusion, plot, sink_share, top_confusions  # noqa: E402
from curate.classify.evaluate import predictions, score_frame  # noqa: E402
from curate.classify.model import ClassifierModel, default_model_dir  # noqa: E402
from curate.taxonomy import Taxonomy  # noqa: E402

STAGE_BAND = 0.3  # the classify stage's default embed_band


def evaluate(model: ClassifierModel, rows: pl.DataFrame, generic: list[str]) -> tuple[dict, pl.DataFrame]:
    pred = predictions(model, rows, band=STAGE_BAND)
    result = score_frame(pred, model.labels)
    table = confusion(pred)
    out = {}
    for lang in ("zh", "en"):
        if lang not in result:
            continue
        dims = result[lang]["dimensions"]
        out[lang] = {"rows": dims["rows"], "macro_f1": dims["macro_f1"], "harmful_recall": result[lang]["binary"]["recall"],
                     **{f"{g}_precision": dims["per_label"].get(g, {}).get("precision") for g in generic},
                     **{f"{g}_recall": dims["per_label"].get(g, {}).get("recall") for g in generic},
                     **{f"{g}_share_of_others": sink_share(table, g).get(lang) for g in generic},
                     "top_confusions": top_confusions(table.filter(pl.col("lang") == lang), n=6).select(
                         "true", "pred", "share", "rows").rows()}
    return out, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=default_model_dir())
    ap.add_argument("--source", default="s_eval")
    ap.add_argument("--per-lang", type=int, default=3000)
    ap.add_argument("--ratios", default="none,0.5,0.7,0.9")
    ap.add_argument("--corpus", type=Path, default=shared_corpus.REPO / ".cache" / "bench_corpus.parquet")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--plot", type=Path, help="heatmaps of the confusion for the first and the last ratio")
    args = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    df = shared_corpus.cached(list(shared_corpus.PRESET_DIRS), args.corpus, log=log)
    rows = eval_rows(df.filter(pl.col("source") == args.source))
    rows = pl.concat([g.sample(min(g.height, args.per_lang), seed=0) for _, g in rows.group_by("lang", maintain_order=True)])
    tax = Taxonomy.load()
    base = ClassifierModel.load(args.model)
    results, tables = {}, {}
    for r in args.ratios.split(","):
        ratio = None if r == "none" else float(r)
        model = dataclasses.replace(base, generic=base.generic or tax.generic, generic_ratio=ratio)
        name = "no rule" if ratio is None else f"rule {ratio}"
        results[name], tables[name] = evaluate(model, rows, tax.generic)
        log(f"{name}: {json.dumps(results[name], ensure_ascii=False)}")
    print(json.dumps(results, indent=1, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    if args.plot:  # the first and the last decision (e.g. no rule, and the shipped ratio)
        names = list(tables)
        plot({name: tables[name] for name in dict.fromkeys([names[0], names[-1]])}, args.plot)


if __name__ == "__main__":
    main()
