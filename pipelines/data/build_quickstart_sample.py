"""Rebuild the quickstart sample from the full public datasets (a maintainer tool, not needed at run time).

    python pipelines/data/build_quickstart_sample.py /path/to/shared/data

Copies small, seeded subsets of permissively licensed safety sets into pipelines/data/quickstart/,
keeping each file's original format so the collect presets read them as they read the full sets.
S-Eval (CC BY-NC-SA) is left out; STAR-1 rows are limited to prompts from permissive upstream sets.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import random
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "quickstart"
STAR1_PERMISSIVE_UPSTREAM = {"SaladBench", "HarmBench", "SimpleSafetyTests", "AttaQ"}


def sample(rows: list, n: int, seed: int = 13) -> list:
    if len(rows) <= n:
        return rows
    idx = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in idx]


def copy_csv(src: Path, dst: Path, n: int, encoding: str = "utf-8") -> None:
    text = src.read_text(encoding=encoding)
    reader = list(csv.reader(io.StringIO(text, newline="")))
    header, body = reader[0], reader[1:]
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(sample(body, n))


def read_lines(src: Path) -> list[str]:
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", encoding="utf-8") as fh:
        return [line for line in fh if line.strip()]


def write_lines(dst: Path, lines: list[str], gz: bool = False) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if gz else open
    with opener(dst, "wt", encoding="utf-8") as fh:
        fh.writelines(line if line.endswith("\n") else line + "\n" for line in lines)


def main(shared: Path) -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    copy_csv(shared / "xstest/xstest_prompts.csv", OUT / "xstest/xstest_prompts.csv", 450)
    copy_csv(shared / "harmbench/harmbench_behaviors_text_all.csv", OUT / "harmbench/harmbench_behaviors_text_all.csv", 120)
    copy_csv(shared / "advbench/advbench_behaviors.csv", OUT / "advbench/advbench_behaviors.csv", 120)
    copy_csv(shared / "strongreject/strongreject_dataset_custom_advbench.csv",
             OUT / "strongreject/strongreject_dataset_custom_advbench.csv", 120)
    copy_csv(shared / "simplesafetytests/simplesafetytests.csv", OUT / "simplesafetytests/simplesafetytests.csv", 100)
    copy_csv(shared / "multijail/MultiJail.csv", OUT / "multijail/MultiJail.csv", 200)
    copy_csv(shared / "cold/dev.csv", OUT / "cold/dev.csv", 300, encoding="utf-8-sig")
    xsafety = read_lines(shared / "xsafety/xsafety_en_zh.jsonl")
    write_lines(OUT / "xsafety/xsafety_en_zh.jsonl", sample(xsafety, 700))
    write_lines(OUT / "flames/Flames_1k_Chinese.jsonl", sample(read_lines(shared / "flames-1k/Flames_1k_Chinese.jsonl"), 250))
    write_lines(OUT / "cvalues/cvalues_responsibility_prompts.jsonl",
                sample(read_lines(shared / "cvalues-responsibility-prompts/cvalues_responsibility_prompts.jsonl"), 150))
    write_lines(OUT / "openai-moderation/samples-1680.jsonl.gz",
                sample(read_lines(shared / "openai-moderation/samples-1680.jsonl.gz"), 200), gz=True)
    write_lines(OUT / "gsm8k/train.jsonl.gz", sample(read_lines(shared / "gsm8k/train.jsonl.gz"), 300), gz=True)
    questions = json.loads((shared / "safetybench-zh-subset/test_zh_subset.json").read_text(encoding="utf-8"))
    (OUT / "safetybench").mkdir(parents=True)
    (OUT / "safetybench/test_zh_subset.json").write_text(
        json.dumps(sample(questions, 200), ensure_ascii=False, indent=1), encoding="utf-8")
    with gzip.open(shared / "star-1/STAR-1.json.gz", "rt", encoding="utf-8") as fh:
        star = [r for r in json.load(fh) if r.get("source") in STAR1_PERMISSIVE_UPSTREAM]
    (OUT / "star1").mkdir(parents=True)
    with gzip.open(OUT / "star1/STAR-1.json.gz", "wt", encoding="utf-8") as fh:
        json.dump(sample(star, 200), fh, ensure_ascii=False)
    for name, src in (("xstest", "xstest"), ("harmbench", "harmbench"), ("advbench", None), ("strongreject", None),
                      ("simplesafetytests", "simplesafetytests"), ("multijail", "multijail"), ("cold", "cold"),
                      ("xsafety", "xsafety"), ("flames", "flames-1k"), ("cvalues", "cvalues-responsibility-prompts"),
                      ("openai-moderation", "openai-moderation"), ("gsm8k", "gsm8k"),
                      ("safetybench", "safetybench-zh-subset"), ("star1", "star-1")):
        if src and (shared / src / "LICENSE").exists():
            shutil.copy(shared / src / "LICENSE", OUT / name / "LICENSE")
    print(f"wrote {sum(1 for _ in OUT.rglob('*') if _.is_file())} files to {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "shared" / "data")
