"""What the classify stage's embedding cascade costs in quality, and how many rows it sends to the encoder.

    python benchmarks/cascade_bench.py [--encoder-cache .cache/usem3_vectors.npz] [--out result.json]

classify_bench.py (and the model card) score every row with the embedding layer blended in. The classify stage
does not: fastText decides the rows it is sure about and only the rows within ``embed_band`` (0.3) of a
decision go through the sentence encoder, the stage's one slow step. This benchmark scores, on the random split
and leave-one-source-out (the same rows and folds as classify_bench.py, permissive sources):
- ``full``: every row blended with the USE layer (the model card's figures);
- ``use_cascade``: the stage as shipped (band 0.3, USE layer);
- ``static_cascade``: the same cascade with a layer on the distilled static encoder (no USE at all);
- ``two_tier_B``: a screen: the band rows go to the static layer first, and only those within B of one of
  its decisions go on to USE.
For each, the share of rows that went through USE (what sets the stage's speed: ~545 texts/s on 2 idle cores).
Both models of a fold are trained with 1 thread, so their fastText layers are identical (checked).
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
from classify_bench import _mean, eval_rows, loso_folds, summary  # noqa: E402

from curate.classify.evaluate import score_frame  # noqa: E402
from curate.classify.options import ClassifyOptions  # noqa: E402
from curate.classify.train import TrainConfig, split_validation, train_model  # noqa: E402
from curate.taxonomy import Taxonomy  # noqa: E402

SCREEN_BANDS = (0.05, 0.1, 0.15, 0.2, 0.3)


def variants(use_model, static_model, rows: pl.DataFrame, band: float) -> dict[str, tuple[list, np.ndarray, int]]:
    """Per decision rule: (categories, harmful flags, rows through USE)."""
    texts, langs = rows["prompt"], rows["lang"].to_list()
    ft = use_model.prompt.scores(texts)
    if not np.array_equal(ft, static_model.prompt.scores(texts)):
        raise SystemExit("the two models' fastText layers differ: train with threads=1")
    out = {}
    d = use_model.predict(texts, langs, band=None)
    out["full"] = (d.categories, d.harmful, rows.height)
    d = use_model.predict(texts, langs, band=band)
    out["use_cascade"] = (d.categories, d.harmful, int(d.blended.sum()))
    d = static_model.predict(texts, langs, band=band)
    out["static_cascade"] = (d.categories, d.harmful, 0)
    # the screen: band rows decided by the static layer, unless it is itself unsure (then by the USE layer)
    cats0, harm0 = use_model.decide(ft, None, None, langs)
    band_rows = np.flatnonzero(use_model.uncertain_rows(ft, band, langs))
    sub_langs, sub_texts = [langs[i] for i in band_rows], texts.gather(band_rows).to_list()
    screen = static_model.embed.decider(static_model)
    static_scores = static_model.embed.blend(ft[band_rows], static_model.embed.vectors(sub_texts), static_model.labels)
    static_cats, static_harm = screen.decide(static_scores, None, None, sub_langs)
    use_scores = use_model.embed.blend(ft[band_rows], use_model.embed.vectors(sub_texts), use_model.labels)
    use_cats, use_harm = use_model.embed.decider(use_model).decide(use_scores, None, None, sub_langs)
    for b in SCREEN_BANDS:
        unsure = screen.uncertain_rows(static_scores, b, sub_langs)
        cats, harm = list(cats0), np.asarray(harm0).copy()
        for k, i in enumerate(band_rows.tolist()):
            cats[i], harm[i] = (use_cats[k], use_harm[k]) if unsure[k] else (static_cats[k], static_harm[k])
        out[f"two_tier_{b}"] = (cats, harm, int(unsure.sum()))
    return out


def scored(rows: pl.DataFrame, cats: list, harm: np.ndarray) -> pl.DataFrame:
    return rows.select("id", "source", "lang", "target", "prompt_harmful").with_columns(
        pl.Series("pred", cats, dtype=pl.List(pl.Utf8)), pl.Series("pred_harmful", harm, dtype=pl.Boolean))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder-cache", type=Path, metavar="NPZ", help="USE vectors of every prompt (encoder_cache.py)")
    ap.add_argument("--corpus", type=Path, default=shared_corpus.REPO / ".cache" / "bench_corpus.parquet")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if not shared_corpus.SHARED.is_dir():
        print(f"skipped: {shared_corpus.SHARED} (the public datasets) is not present", file=sys.stderr)
        return
    df = shared_corpus.cached(list(shared_corpus.PRESET_DIRS), args.corpus, log=log)
    df = df.filter(pl.col("source").is_in(shared_corpus.PERMISSIVE))
    tax = Taxonomy.load()
    if args.encoder_cache:
        from encoder_cache import encode_all

        encode_all(df, tax, args.encoder_cache, log)
    band = ClassifyOptions().embed_band
    use_config = TrainConfig(threads=1, embed_weight=0.7, train_kind=False)
    static_config = TrainConfig(**{**use_config.__dict__, "embed_encoder": "static"})

    def both(train: pl.DataFrame):
        return train_model(train, tax, use_config), train_model(train, tax, static_config)

    result: dict = {"band": band}
    train, test = split_validation(df, 0.2, seed=7)  # classify_bench's random split
    use_model, static_model = both(train)
    rows = eval_rows(test)
    result["random"] = {name: {"use_share": round(n / rows.height, 4),
                               **summary(score_frame(scored(rows, c, h), use_model.labels))}
                        for name, (c, h, n) in variants(use_model, static_model, rows, band).items()}
    for name, figures in result["random"].items():
        log(f"random {name}: {figures}")
    pooled: dict[str, list] = {}
    per_source: dict[str, dict] = {}
    through: dict[str, int] = {}
    for fam, train, rows in loso_folds(df):
        t0 = time.perf_counter()
        use_model, static_model = both(train)
        for name, (c, h, n) in variants(use_model, static_model, rows, band).items():
            frame = scored(rows, c, h)
            pooled.setdefault(name, []).append(frame)
            per_source.setdefault(name, {})[fam] = summary(score_frame(frame, use_model.labels))
            through[name] = through.get(name, 0) + n
        log(f"LOSO {fam}: {time.perf_counter() - t0:.0f}s")
    result["loso"] = {}
    for name, frames in pooled.items():
        rows_in = sum(f.height for f in frames)
        result["loso"][name] = {"use_share": round(through[name] / rows_in, 4),
                                "pooled": summary(score_frame(pl.concat(frames), use_model.labels)),
                                "mean": _mean(per_source[name])}
        log(f"LOSO {name}: {result['loso'][name]}")
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
