"""Whole-process time of small runs, as a user waits for them, against the obvious library baseline in the same run.

    python benchmarks/startup.py                  # ~40k mixed zh/en prompts, best of 3 (make bench)
    python benchmarks/startup.py --per-lang 4000  # a smaller corpus

What is timed is the whole process, from exec to exit (imports, compiled-kernel and model loading, reading and
writing files), because that is what a user waits for:
- `curate --version`;
- `curate dedup --in corpus.jsonl --out out.parquet` against a process that runs the usual datasketch recipe on
  the same prompts (per document `MinHash.update` over the same shingles, `MinHashLSH` insert + query, union-find),
  with the pair precision / recall / F1 of both on the planted near-duplicates (dedup_bench.py's quality corpus);
- `curate classify --embed-band 0` (fastText alone) against a process that loads the same fastText model with the
  `fasttext` package and calls `predict(k=-1)` on the prompts; `--cascade` also times the default cascade.
The load average is printed beside the figures: the machine is shared, compare within one run only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import dedup_bench  # noqa: E402

REPO = HERE.parent
BIN = Path(sys.executable).parent


def datasketch_baseline(texts_path: str, out_path: str) -> None:
    """The baseline process: datasketch MinHash + MinHashLSH over the prompts, cluster roots to a .npy file."""
    import queue

    from curate.dedup import DedupOptions

    spec = DedupOptions().shingling()  # the same shingles as curate's defaults (as dedup_bench.py does)
    q: queue.Queue = queue.Queue()
    dedup_bench.run_datasketch(texts_path, {"threshold": DedupOptions().threshold, "num_perm": 128,
                                            "word_n": spec.word_n, "char_n": spec.char_n}, q)
    np.save(out_path, np.asarray(q.get()["roots"]))


def fasttext_baseline(texts_path: str, model_path: str) -> None:
    """The baseline process: the fasttext package's own load_model + predict(k=-1) over the prompts."""
    import fasttext

    texts = [t.replace("\n", " ") for t in pl.read_parquet(texts_path)["text"].to_list()]
    fasttext.load_model(model_path).predict(texts, k=-1)


def timed(cmd: list[str], repeat: int) -> float:
    """Best wall seconds of ``repeat`` runs of a whole process."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def labels_from_clusters(clusters: list[str | None]) -> np.ndarray:
    index: dict[str, int] = {}
    return np.array([index.setdefault(c, len(index)) if c else -1 - i for i, c in enumerate(clusters)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-lang", type=int, default=12_500, help="base prompts per language (~40k rows in all)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cascade", action="store_true", help="also time classify with the default embedding cascade")
    ap.add_argument("--work", type=Path, default=REPO / ".cache" / "startup")
    args = ap.parse_args()
    if not dedup_bench.DATA.is_dir():
        print(f"skipped: {dedup_bench.DATA} (the public datasets) is not present", file=sys.stderr)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    texts, langs, groups = dedup_bench.build_quality_corpus(dedup_bench.load_base(), args.per_lang, 0.3, 0)
    ids = [f"r{i}" for i in range(len(texts))]
    corpus = args.work / "corpus.jsonl"
    with open(corpus, "w", encoding="utf-8") as fh:
        for i, (text, lang) in enumerate(zip(texts, langs)):
            fh.write(json.dumps({"id": ids[i], "source": "bench", "source_id": ids[i], "lang": lang, "prompt": text},
                                ensure_ascii=False) + "\n")
    plain = args.work / "texts.parquet"
    pl.DataFrame({"text": texts}).write_parquet(plain)
    model = REPO / "curate" / "models" / "default" / "prompt.bin"
    me = [sys.executable, str(Path(__file__).resolve())]
    load = os.getloadavg()
    out = args.work / "dedup.parquet"
    rows = [("curate --version", timed([str(BIN / "curate"), "--version"], args.repeat), None)]
    dedup = timed([str(BIN / "curate"), "dedup", "--in", str(corpus), "--out", str(out)], args.repeat)
    base = timed([*me, "--baseline", "datasketch", str(plain), str(args.work / "roots.npy")], args.repeat)
    rows += [("curate dedup", dedup, base), ("datasketch MinHashLSH process", base, None)]
    classify_cmd = [str(BIN / "curate"), "classify", "--in", str(corpus), "--out", str(args.work / "classified.parquet")]
    ft = timed([*me, "--baseline", "fasttext", str(plain), str(model)], args.repeat)
    rows.append(("curate classify --embed-band 0", timed([*classify_cmd, "--embed-band", "0"], args.repeat), ft))
    if args.cascade:
        rows.append(("curate classify (default cascade)", timed(classify_cmd, 1), ft))
    rows.append(("fasttext load_model + predict process", ft, None))

    print(f"\n{len(texts):,} prompts ({langs.count('zh'):,} zh, {langs.count('en'):,} en); whole process, best of "
          f"{args.repeat}; load average {load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end ({os.cpu_count()} cores)")
    print(f"{'command':<40} {'seconds':>8} {'records/s':>10} {'speed vs baseline':>18}")
    for name, seconds, baseline in rows:
        rate = "" if name.startswith("curate --") else f"{len(texts) / seconds:,.0f}"
        versus = f"{baseline / seconds:.1f}x" if baseline else ""
        print(f"{name:<40} {seconds:>8.2f} {rate:>10} {versus:>18}")
    found = pl.read_parquet(out).select("dup_cluster", "is_duplicate")
    clusters = labels_from_clusters(found["dup_cluster"].to_list())
    for name, labels in (("curate dedup", clusters), ("datasketch", np.load(args.work / "roots.npy"))):
        dedup_bench.print_quality(name, dedup_bench.score(labels, groups, langs))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--baseline":
        {"datasketch": datasketch_baseline, "fasttext": fasttext_baseline}[sys.argv[2]](*sys.argv[3:5])
        sys.exit(0)
    sys.exit(main())
