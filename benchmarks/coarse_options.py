"""Quick leave-one-source-out loop for issue 21: how coarse source labels are treated, and the
specific-over-generic rule, measured on sentence-vector heads alone (vectors encoded once and kept in .cache/,
closed-form ridge heads instead of the shipped L-BFGS softmax heads), in minutes instead of the hours a full
fastText LOSO takes on a shared 2-core machine.

    python benchmarks/coarse_options.py [--modes generic,harm_only,partial] [--ratios none,0.5,0.7,0.9]
        [--out results.json] [--save-predictions DIR]

Per held-out source (family, as classify_bench.py): ridge heads are fitted on every other source (sampled and
weighted as the shipped heads, plus the taxonomy's lines) with the coarse rows treated by each mode
(curate/classify/coarse.py), then score the held-out rows (at most 2,500 per source and language). Thresholds are
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
from encoder_cache import encode_all  # noqa: E402
from classify_bench import MIN_LOSO_ROWS, eval_rows  # noqa: E402

from curate.classify.confusion import confusion, sink_share, top_predictions  # noqa: E402
from curate.classify.embedding.encoder import shared_encoder  # noqa: E402
from curate.classify.evaluate import score_frame  # noqa: E402
from curate.classify.metrics import flag_tradeoff  # noqa: E402
from curate.classify.model import ClassifierModel, TextClassifier  # noqa: E402
from curate.classify.embedding.layer import head_inputs  # noqa: E402
from curate.classify.train import (TrainConfig, _with_null_target, calibrate, taxonomy_examples,  # noqa: E402
                                   training_rows)
from curate.taxonomy import Taxonomy  # noqa: E402


def ridge_fit(x: np.ndarray, harmful: np.ndarray, weight: np.ndarray, dims: list[list[str]], labels: list[str],
              lam: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form weighted ridge heads (harm: 0/1; dimensions: soft targets over the harm labels): seconds where
    the shipped L-BFGS softmax heads take minutes per fit on this shared machine."""
    harm_labels = labels[1:]
    col = {label: j for j, label in enumerate(harm_labels)}
    xb = np.hstack([x, np.ones((len(x), 1), np.float32)])
    reg = lam * np.eye(xb.shape[1], dtype=np.float32)
    reg[-1, -1] = 0.0
    w_harm = np.linalg.solve(xb.T @ (xb * weight[:, None]) + reg, xb.T @ (weight * harmful))
    t = np.zeros((len(dims), len(harm_labels)), np.float32)
    for i, ds in enumerate(dims):
        known = [col[d] for d in ds if d in col]
        if known:
            t[i, known] = 1.0 / len(known)
    sel = t.sum(axis=1) > 0
    xd, wd = xb[sel], weight[sel]
    w_dims = np.linalg.solve(xd.T @ (xd * wd[:, None]) + reg, xd.T @ (t[sel] * wd[:, None]))
    return w_harm.astype(np.float32), w_dims.astype(np.float32)


def ridge_scores(x: np.ndarray, heads: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The fastText score layout, as EmbeddingHeads.scores: S00 = 1 - p(harm), dimension = p(harm) * relative."""
    xb = np.hstack([x, np.ones((len(x), 1), np.float32)])
    p_harm = np.clip(xb @ heads[0], 0.0, 1.0)
    raw = np.clip(xb @ heads[1], 1e-6, None)
    rel = raw / raw.max(axis=1, keepdims=True)
    return np.hstack([(1.0 - p_harm)[:, None], p_harm[:, None] * rel]).astype(np.float32)


def fit_rows(rows: pl.DataFrame, tax, labels: list[str], config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Ridge heads on ``rows`` (target or null) plus the taxonomy's lines, sampled and weighted as the shipped heads."""
    extra_texts, extra_targets = taxonomy_examples(tax, 1)
    texts, harmful, weight, dims = head_inputs(rows, extra_texts, extra_targets, config.embed_example_weight,
                                               config.group_cap, config.group_floor, config.seed)
    return ridge_fit(shared_encoder().encode(texts), harmful.astype(np.float32), weight.astype(np.float32), dims,
                     labels)


def heads_loso(df: pl.DataFrame, tax, labels: list[str], config: TrainConfig, log) -> pl.DataFrame:
    """Held-out rows of every source with ridge-head scores (column ``scores``) from heads fitted without it."""
    family = df["source"].replace(shared_corpus.FAMILY)
    df = df.with_columns(family.alias("_family"))
    held_out = eval_rows(df)
    sizes = held_out.group_by("_family").len()
    families = [f for f, n in sizes.sort("_family").iter_rows() if n >= MIN_LOSO_ROWS]

    def score_fn(train: pl.DataFrame, rows: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
        heads = fit_rows(train, tax, labels, config)
        return ridge_scores(shared_encoder().encode(rows["prompt"].to_list()), heads), labels

    parts = []
    for fam in families:
        t0 = time.perf_counter()
        train = df.filter(pl.col("_family") != fam).drop("_family")
        labelled, harm_only, report = training_rows(train, tax, config, score_fn)
        heads = fit_rows(pl.concat([labelled, _with_null_target(harm_only)]), tax, labels, config)
        rows = held_out.filter(pl.col("_family") == fam).drop("_family")
        scores = ridge_scores(shared_encoder().encode(rows["prompt"].to_list()), heads)
        parts.append(rows.with_columns(pl.lit(fam).alias("family"),
                                       pl.Series("scores", scores, dtype=pl.Array(pl.Float32, len(labels)))))
        log(f"  {config.coarse} {fam}: {rows.height} rows, coarse {report.get('coarse_rows')} "
            f"{report.get('assigned', '')} ({time.perf_counter() - t0:.0f}s)")
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


LOOKALIKES = ("xstest", "cvalues")  # benign prompts that resemble harmful ones (XSTest safe prompts, CValues)
SHIFTS = (-0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def tradeoff(decided: pl.DataFrame) -> dict:
    """Per language, the harmful flag's recall and benign rows flagged (look-alikes apart) per threshold shift."""
    known = decided.filter(pl.col("prompt_harmful").is_not_null())
    out = {}
    for lang in ("zh", "en"):
        part = known.filter(pl.col("lang") == lang)
        if part.height:
            group = pl.when(pl.col("source").is_in(LOOKALIKES)).then(pl.lit("lookalike")).otherwise(pl.lit("other_benign"))
            out[lang] = flag_tradeoff(part["prompt_harmful"].to_numpy(),
                                      (part["harm_score"] - part["harm_threshold"]).to_numpy(),
                                      part.select(group)["literal"].to_numpy(), SHIFTS)
    return out


def plot_tradeoff(curves: dict, path: Path) -> None:
    """Recall on harmful prompts against benign look-alikes flagged, one line per language; points are shifts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for lang, rows in curves.items():
        xs = [r.get("flagged_lookalike", r.get("flagged_other_benign")) for r in rows]
        ys = [r["recall"] for r in rows]
        ax.plot(xs, ys, marker="o", label=lang)
        for r, x, y in zip(rows, xs, ys):
            ax.annotate(f"{r['shift']:+.2f}", (x, y), fontsize=6, xytext=(3, -8), textcoords="offset points")
    ax.axhline(0.95, color="grey", lw=0.6, ls="--")
    ax.axvline(0.10, color="grey", lw=0.6, ls="--")
    ax.set_xlabel("look-alikes flagged (XSTest safe en, CValues zh)")
    ax.set_ylabel("recall on harmful prompts")
    ax.set_title("harmful flag, LOSO, sentence-vector proxy (labels: threshold shift)", fontsize=8)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
                     "benign_flagged": round(float(benign["pred_harmful"].mean()), 4) if benign.height else None,
                     "lookalikes_flagged": round(float(benign.filter(pl.col("source").is_in(LOOKALIKES))[
                         "pred_harmful"].mean() or 0), 4) if benign.filter(pl.col("source").is_in(LOOKALIKES)).height
                     else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default="generic,harm_only,partial")
    ap.add_argument("--ratios", default="none,0.5,0.7,0.9")
    ap.add_argument("--corpus", type=Path, default=shared_corpus.REPO / ".cache" / "bench_corpus.parquet")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--save-predictions", type=Path, metavar="DIR")
    ap.add_argument("--from-predictions", type=Path, metavar="DIR", help="re-decide the heads' held-out scores "
                    "saved by --save-predictions (no encoding, no fitting)")
    ap.add_argument("--tradeoff", metavar="MODE:RATIO", help="the harmful-flag trade-off curve of one option "
                    "(e.g. partial:0.7) into the results, and with --plot-tradeoff as a PNG")
    ap.add_argument("--plot-tradeoff", type=Path)
    args = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    df = shared_corpus.cached(list(shared_corpus.PRESET_DIRS), args.corpus, log=log)
    df = df.filter(pl.col("source").is_in(shared_corpus.PERMISSIVE))
    # at most group_cap rows per (source, language), as the heads' training samples anyway: about 20k texts to
    # encode instead of 55k, and the same sample in every fold
    cap = TrainConfig().group_cap
    df = pl.concat([g.sample(min(g.height, cap), seed=0) for _, g in df.group_by(["source", "lang"], maintain_order=True)])
    tax = Taxonomy.load()
    labels = tax.all_ids
    if args.from_predictions is None:
        encode_all(df, tax, args.corpus.with_name("usem3_vectors.npz"), log)
    ratios = [None if r == "none" else float(r) for r in args.ratios.split(",")]
    results: dict = {}
    for mode in args.modes.split(","):
        if args.from_predictions is not None:
            pred = pl.read_parquet(args.from_predictions / f"heads_{mode}.parquet")
        else:
            pred = heads_loso(df, tax, labels, TrainConfig(embed_weight=0.7, coarse=mode), log)
        if args.save_predictions:
            args.save_predictions.mkdir(parents=True, exist_ok=True)
            pred.write_parquet(args.save_predictions / f"heads_{mode}.parquet")
        for ratio in ratios:
            name = f"{mode}, rule {ratio}" if ratio is not None else f"{mode}, no rule"
            decided = decide_pooled(pred, labels, tax, ratio)
            results[name] = figures(decided, labels, tax.generic)
            log(f"{name}: {json.dumps(results[name])}")
            if args.tradeoff == f"{mode}:{ratio if ratio is not None else 'none'}":
                results[name]["tradeoff"] = tradeoff(decided)
                if args.plot_tradeoff:
                    plot_tradeoff(results[name]["tradeoff"], args.plot_tradeoff)
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
