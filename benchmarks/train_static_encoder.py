"""Distil the teacher sentence encoder (USE multilingual v3) into the static encoder shipped in curate/models.

    python benchmarks/train_static_encoder.py [--encoder-cache .cache/usem3_vectors.npz] [--out FILE]
        [--minn 1 --maxn 4 --bits 16 --words --rank 128 --l2 1e-6 --iters 60] [--no-save] [--augment]

Texts: every prompt of the permissively licensed corpus (shared_corpus.PERMISSIVE) and the taxonomy's lines,
their teacher vectors encoded once and kept in --encoder-cache (encoder_cache.py). Prints the cosine to the
teacher on a tenth of the texts held out by hash (an encoder fitted on the other nine tenths), per language, then
fits on all texts and writes the file (deterministic: same texts, same options, same arrays). Speed: texts/s of
the static encoder on 100k corpus prompts (best of 3), with the load average (the machine is shared).

``--augment`` also fits on about 200k more texts (distil_texts.py: sentences and clauses of the prompts, splices,
MMLU / GSM8K questions, STAR-1 answer paragraphs; teacher vectors kept in --augment-cache); texts made from a
held-out prompt are held out with it. Measured: no gain (model card, "The static sentence encoder").
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
import distil_texts  # noqa: E402
import shared_corpus  # noqa: E402
from encoder_cache import encode_all, encode_texts  # noqa: E402

from curate.classify.embedding.distil import cosine, distil  # noqa: E402
from curate.classify.embedding.encoder import shared_encoder  # noqa: E402
from curate.classify.embedding.ngrams import NgramSpec  # noqa: E402
from curate.classify.embedding.static import DEFAULT_PATH, StaticEncoder  # noqa: E402
from curate.classify.train import taxonomy_examples  # noqa: E402
from curate.taxonomy import Taxonomy  # noqa: E402

HELD_OUT = 10  # one text in HELD_OUT (by hash) is held out for the cosine figures


def texts_and_langs(df: pl.DataFrame, tax) -> pl.DataFrame:
    lines = taxonomy_examples(tax, 1)[0]
    frame = pl.concat([df.select(pl.col("prompt").fill_null(" ").alias("text"), "lang"),
                       pl.DataFrame({"text": lines, "lang": ["taxonomy"] * len(lines)})])
    return frame.unique("text", keep="first", maintain_order=True)


def agreement(vectors: np.ndarray, teacher: np.ndarray, langs: list[str]) -> dict:
    c = cosine(vectors, teacher)
    out = {}
    for lang in ("zh", "en", "all"):
        part = c if lang == "all" else c[np.array(langs) == lang]
        if len(part):
            out[lang] = {"texts": len(part), "mean": round(float(part.mean()), 4),
                         "median": round(float(np.median(part)), 4), "p10": round(float(np.percentile(part, 10)), 4)}
    return out


def speed(encoder, texts: pl.Series, n: int = 100_000) -> dict:
    sample = texts.sample(n, seed=3, with_replacement=True)
    encoder.encode(sample.head(100))  # compiled loops loaded
    load = [round(x, 2) for x in os.getloadavg()]
    best = min(_timed(encoder, sample) for _ in range(3))
    return {"texts": n, "texts_per_s": round(n / best), "load_average": load}


def _timed(encoder, texts) -> float:
    t0 = time.perf_counter()
    encoder.encode(texts)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder-cache", type=Path, default=shared_corpus.REPO / ".cache" / "usem3_vectors.npz")
    ap.add_argument("--out", type=Path, default=DEFAULT_PATH)
    ap.add_argument("--minn", type=int, default=NgramSpec.minn)
    ap.add_argument("--maxn", type=int, default=NgramSpec.maxn)
    ap.add_argument("--bits", type=int, default=16, help="2**bits hash buckets")
    ap.add_argument("--words", action="store_true", help="whole words as features too")
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--l2", type=float, default=1e-6)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--no-save", action="store_true", help="held-out figures only")
    ap.add_argument("--augment", action="store_true",
                    help="also fit on fragments, splices and general texts (distil_texts.py)")
    ap.add_argument("--augment-cache", type=Path, default=shared_corpus.REPO / ".cache" / "usem3_augment_vectors.npz")
    args = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    df = shared_corpus.cached(list(shared_corpus.PRESET_DIRS), shared_corpus.REPO / ".cache" / "bench_corpus.parquet",
                              log=log).filter(pl.col("source").is_in(shared_corpus.PERMISSIVE))  # classify_bench's rows
    tax = Taxonomy.load()
    encode_all(df, tax, args.encoder_cache, log)
    frame = texts_and_langs(df, tax)
    texts = frame["text"].to_list()
    # as the cache keeps them (float16): a first run and a run from the cache fit the same encoder
    teacher = shared_encoder().encode(texts).astype(np.float16).astype(np.float32)
    spec = NgramSpec(args.minn, args.maxn, 1 << args.bits, words=int(args.words))
    options = dict(spec=spec, rank=args.rank, l2=args.l2, iters=args.iters, log=log)
    held = (frame["text"].hash(seed=0) % HELD_OUT == 0).to_numpy()
    fit_texts, fit_teacher, fit_held = texts, teacher, held
    if args.augment:
        extra = distil_texts.augmented(frame.filter(pl.col("lang") != "taxonomy"))
        held_parents = set(frame.filter(pl.Series(held))["text"].to_list())
        extra_held = np.array([any(p in held_parents for p in ps) for ps in extra["parents"].to_list()], dtype=bool)
        extra_texts = extra["text"].to_list()
        log(f"augment: {len(extra_texts):,} texts ({int(extra_held.sum()):,} made from held-out prompts) "
            f"{extra.group_by('lang').len().sort('lang').rows()}")
        extra_teacher = encode_texts(extra_texts, args.augment_cache, log).astype(np.float16).astype(np.float32)
        fit_texts = texts + extra_texts
        fit_teacher = np.concatenate([teacher, extra_teacher])
        fit_held = np.concatenate([held, extra_held])

    def fit(keep: np.ndarray) -> StaticEncoder:
        """The student fitted on the texts where ``keep``."""
        t0 = time.perf_counter()
        chosen = [t for t, k in zip(fit_texts, keep) if k]
        student = distil(chosen, fit_teacher[keep], **options)
        log(f"fitted on {len(chosen):,} texts in {time.perf_counter() - t0:.0f}s")
        return student

    part = fit(~fit_held)
    langs = frame["lang"].to_list()
    report = {"options": {**spec.as_dict(), "rank": args.rank, "l2": args.l2, "iters": args.iters,
                          "augment": args.augment, "fitted_on": int((~fit_held).sum())},
              "held_out": agreement(part.encode([t for t, h in zip(texts, held) if h]), teacher[held],
                                    [g for g, h in zip(langs, held) if h]),
              "fitted_texts": agreement(part.encode([t for t, h in zip(texts, held) if not h][:5000]),
                                        teacher[~held][:5000], [g for g, h in zip(langs, held) if not h][:5000]),
              "speed": speed(part, frame["text"])}
    log(json.dumps(report))
    if not args.no_save:
        final = fit(np.ones(len(fit_texts), dtype=bool))
        final.save(args.out)
        report["saved"] = {"path": str(args.out), "bytes": args.out.stat().st_size, "texts": len(fit_texts)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
