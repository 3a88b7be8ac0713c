"""More texts for distilling the static encoder: the teacher's vectors of texts no label is needed for.

The static encoder (curate/classify/embedding/static.py) is a mean of n-gram rows fitted to the teacher's vectors.
Fitted on the 54k permissive prompts alone it reproduced the teacher on held-out prompts at cosine 0.66 (en) /
0.77 (zh): each n-gram row is seen in too few contexts. These texts add contexts, all from permissively licensed
sets:
- fragments: the sentences (and, in Chinese, clauses) of every prompt, so a phrase's vector is also learned alone;
- splices: the first half of one prompt and the second half of another of the same language;
- general text: MMLU questions (MIT) and GSM8K questions (MIT), and paragraphs of STAR-1's answers (Apache-2.0).
Each text keeps the prompts it came from (``parents``), so a text made from a held-out prompt can be held out
with it.
"""
from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import polars as pl

from shared_corpus import SHARED, spliced

MIN_CHARS = {"zh": 6, "en": 20}
# where a fragment ends: Chinese sentences and clauses, English sentences
SPLIT = {"zh": re.compile(r"(?<=[。！？；!?;，,：:])"), "en": re.compile(r"(?<=[.!?;:])\s+")}


def _fragments(prompts: pl.DataFrame, per_prompt: int) -> pl.DataFrame:
    """Up to ``per_prompt`` sentences (zh: sentences and clauses) of each prompt with more than one."""
    out = []
    for text, lang in prompts.select("text", "lang").iter_rows():
        parts = [p.strip() for p in SPLIT[lang].split(text) if len(p.strip()) >= MIN_CHARS[lang]]
        if len(parts) < 2:
            continue
        # a fragment alone, and two neighbours together: phrases in a shorter context than the whole prompt
        pieces = parts + [a + (" " if lang == "en" else "") + b for a, b in zip(parts, parts[1:])]
        for piece in pieces[:per_prompt]:
            if piece != text:
                out.append((piece, lang, [text]))
    return pl.DataFrame(out, schema={"text": pl.Utf8, "lang": pl.Utf8, "parents": pl.List(pl.Utf8)}, orient="row")


def _splices(prompts: pl.DataFrame, per_lang: dict[str, int], seed: int) -> pl.DataFrame:
    parts = []
    for i, (lang, k) in enumerate(sorted(per_lang.items())):
        pool = prompts.filter(pl.col("lang") == lang)
        a = pool.sample(k, with_replacement=True, seed=seed + 2 * i)["text"]
        b = pool.sample(k, with_replacement=True, seed=seed + 2 * i + 1)["text"]
        parts.append(pl.DataFrame({"text": spliced(a, b), "lang": [lang] * k,
                                   "parents": [[x, y] for x, y in zip(a.to_list(), b.to_list())]}))
    return pl.concat(parts)


def _general(data_dir: Path, star1_paragraphs: int = 6) -> pl.DataFrame:
    """English questions and answer paragraphs of the permissive general sets (no parents: never held out)."""
    texts = []
    for path in sorted((data_dir / "mmlu").glob("*/*.csv")):
        with path.open(encoding="utf-8") as f:
            texts += [row[0] for row in csv.reader(f) if row]
    for name in ("train.jsonl.gz", "test.jsonl.gz"):
        with gzip.open(data_dir / "gsm8k" / name, "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["question"] for line in f if line.strip()]
    star1 = json.loads(gzip.open(data_dir / "star-1" / "STAR-1.json.gz", "rt", encoding="utf-8").read())
    for row in star1:
        body = str(row.get("response") or "").replace("<think>", "").replace("</think>", "\n")
        paragraphs = [p.strip() for p in body.split("\n") if len(p.strip()) >= MIN_CHARS["en"]]
        texts += [p[:600] for p in paragraphs[:star1_paragraphs]]
    return pl.DataFrame({"text": texts, "lang": ["en"] * len(texts), "parents": [[] for _ in texts]},
                        schema={"text": pl.Utf8, "lang": pl.Utf8, "parents": pl.List(pl.Utf8)})


def augmented(prompts: pl.DataFrame, seed: int = 0, per_prompt: int = 4, splices: dict[str, int] | None = None,
              data_dir: Path = SHARED) -> pl.DataFrame:
    """text, lang, parents: the extra distillation texts for ``prompts`` (columns text, lang: zh/en rows used),
    without the prompts themselves and without repeats."""
    base = prompts.filter(pl.col("lang").is_in(["zh", "en"]))
    splices = splices or {"zh": 20_000, "en": 20_000}
    extra = pl.concat([_fragments(base, per_prompt), _splices(base, splices, seed), _general(data_dir)])
    extra = extra.filter(pl.col("text").str.strip_chars().str.len_chars() > 0)
    return extra.unique("text", keep="first", maintain_order=True).join(
        prompts.select("text"), on="text", how="anti", maintain_order="left")
