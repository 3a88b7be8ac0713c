"""Rebuild the small eval presets bundled in curate/data/eval/ from the shared copies of their sources.

    python benchmarks/build_eval_presets.py [--data ../shared/data]

Deterministic (seeded samples): running it again gives byte-identical files. Only permissively licensed
sources are used (MIT / CC-BY-4.0); CREDITS.md beside the files names each source, commit and licence.
The product never reads ../shared at run time: these few hundred rows are what ships.
"""
from __future__ import annotations

import argparse
import ast
import csv
import gzip
import json
import random
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "curate" / "data" / "eval"
SEED = 18
HARMFUL_PER_LANGUAGE = 96  # parallel en/zh MultiJail rows, spread over dimensions
BENIGN = 250  # every XSTest safe prompt
GSM8K, MMLU, SAFETYBENCH = 60, 60, 60


def _write(name: str, rows: list[dict]) -> None:
    with open(OUT / name, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{name}: {len(rows)} rows")


def harmful(data: Path) -> None:
    """MultiJail (MIT): the same prompts in English and Chinese, tags mapped to the taxonomy's dimensions."""
    from curate.taxonomy import Taxonomy

    mapping = Taxonomy.load().mapping("multijail")
    by_dim: dict[str, list[dict]] = defaultdict(list)
    with open(data / "multijail" / "MultiJail.csv", encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            mapped = mapping.map(ast.literal_eval(row["tags"]), row["en"])
            if not mapped.categories or not row["en"].strip() or not row["zh"].strip():
                continue
            by_dim[mapped.categories[0]].append({"id": row["id"], "categories": mapped.categories,
                                                 "en": row["en"].strip(), "zh": row["zh"].strip()})
    rng = random.Random(SEED)
    for rows in by_dim.values():
        rng.shuffle(rows)
    picked: list[dict] = []
    while len(picked) < HARMFUL_PER_LANGUAGE and any(by_dim.values()):  # round-robin: rare dimensions first
        for dim in sorted(by_dim, key=lambda d: (len(by_dim[d]), d)):
            if by_dim[dim] and len(picked) < HARMFUL_PER_LANGUAGE:
                picked.append(by_dim[dim].pop())
    picked.sort(key=lambda r: int(r["id"]))
    _write("harmful.jsonl", [{"id": f"multijail-{r['id']}-{lang}", "pair": f"multijail-{r['id']}", "lang": lang,
                              "prompt": r[lang], "categories": r["categories"], "source": "multijail"}
                             for lang in ("en", "zh") for r in picked])


def benign(data: Path) -> None:
    """XSTest (CC-BY-4.0): the safe prompts that look like harmful ones."""
    with open(data / "xstest" / "xstest_prompts.csv", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "safe"][:BENIGN]
    _write("benign.jsonl", [{"id": f"xstest-{r['id']}", "lang": "en", "prompt": r["prompt"].strip(),
                             "type": r["type"], "source": "xstest"} for r in rows])


def gsm8k(data: Path) -> None:
    """GSM8K test (MIT): the reference is the number after '####'."""
    with gzip.open(data / "gsm8k" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    idx = sorted(random.Random(SEED).sample(range(len(rows)), GSM8K))
    _write("gsm8k.jsonl", [{"id": f"gsm8k-test-{i}", "lang": "en", "question": rows[i]["question"],
                            "answer": rows[i]["answer"].split("####")[-1].strip().replace(",", ""),
                            "source": "gsm8k"} for i in idx])


def mmlu(data: Path) -> None:
    """MMLU test (MIT): one item from each of 60 (subject, row) draws."""
    items = []
    for path in sorted((data / "mmlu" / "test").glob("*_test.csv")):
        with open(path, encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.reader(fh)):
                items.append((path.name.removesuffix("_test.csv"), i, row))
    picked = sorted(random.Random(SEED).sample(range(len(items)), MMLU))
    _write("mmlu.jsonl", [{"id": f"mmlu-{s}-{i}", "lang": "en", "question": row[0], "choices": row[1:5],
                           "answer": row[5].strip(), "subject": s, "source": "mmlu"}
                          for s, i, row in (items[k] for k in picked)])


def safetybench(data: Path) -> None:
    """SafetyBench zh subset (MIT): multiple-choice risk identification (is this text unsafe? ...)."""
    folder = data / "safetybench-zh-subset"
    questions = json.loads((folder / "test_zh_subset.json").read_text(encoding="utf-8"))
    answers = json.loads((folder / "test_answers_zh_subset.json").read_text(encoding="utf-8"))
    usable = [q for q in questions if str(q["id"]) in answers and 2 <= len(q["options"]) <= 4]
    picked = sorted(random.Random(SEED).sample(range(len(usable)), SAFETYBENCH))
    _write("safetybench_zh.jsonl", [{"id": f"safetybench-zh-{q['id']}", "lang": "zh",
                                     "question": re.sub(r"\s+$", "", q["question"]),
                                     "choices": [o.strip() for o in q["options"]],
                                     "answer": "ABCD"[answers[str(q["id"])]["answer"]],
                                     "category": q["category"], "source": "safetybench"}
                                    for q in (usable[k] for k in picked)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for build in (harmful, benign, gsm8k, mmlu, safetybench):
        build(args.data)


if __name__ == "__main__":
    main()
