"""The default pipeline at corpus scale: a realistic bilingual corpus of N rows through `curate run`.

    python benchmarks/million.py                    # 1M rows (make bench)
    python benchmarks/million.py --rows 20000       # what the test runs
    python benchmarks/million.py --embed-band 0     # classify with fastText alone (no sentence-embedding cascade)
    python benchmarks/million.py --answer-chars 2000   # every row answered (~2,000 chars): a corpus after synthesis
    python benchmarks/million.py --rows 200000 --engine dask --workers 2   # the local engine, then the Dask engine

Corpus (built from ../shared/data with curate's own collect, via shared_corpus.py): every prompt of the public
sets, zh and en as the real sets mix them, then filled up to N rows the way a mined log looks:
- spliced rows: the first half of one real prompt and the second half of another of the same language, so
  lengths follow the real sets and rows are distinct;
- planted near-duplicates (``--near-dups``, default 10%): a real or spliced row with a small edit (a wrapper
  phrase, punctuation, a few characters cut from the middle, doubled spaces);
- exact copies (2%), as logs repeat themselves;
- source answers: rows of sets that ship answers (XSTest completions, STAR-1, GSM8K) keep them (so balance is
  told ``pending: keep``: with some answered rows its ``auto`` would leave the unanswered prompts out).
The rows carry no labels (mined data): collect detects the language, classify decides harm and dimensions.

Pipeline, as a user runs it with no model endpoint: collect -> dedup -> classify -> balance (selects
``--select`` prompts by the quotas, before synthesis) -> export of the prompt set. The script prints wall time,
peak RSS and records/s per stage and in total, the share of time in each stage, and the machine's load average
(the machine is shared: compare figures from the same run only). ``--plot`` writes the time-per-stage chart.

``--engine dask``: the same corpus and pipeline run twice in one invocation, first on the local engine, then
with ``--engine dask`` on a LocalCluster of ``--workers`` processes (127.0.0.1) that curate starts; both
tables are printed, with the peak RSS of each worker process, and the stage outputs of the two runs are
compared (exit 1 if they differ; with classify's embedding layer on, scores may differ in the 4th decimal,
see docs/scale-out.md, so compare with ``--embed-band 0``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import shared_corpus  # noqa: E402

REPO = shared_corpus.REPO
STAGES = ("collect", "dedup", "classify", "balance", "export")
WRAPPERS = {"en": ["Please answer: ", "Question: ", "Hi! ", "I need help. "],
            "zh": ["请回答：", "问题：", "你好！", "我需要帮助。"]}


def base_rows(corpus: Path) -> pl.DataFrame:
    """Every real prompt (zh and en), with its source answer where the set ships one."""
    df = shared_corpus.cached(list(shared_corpus.PRESET_DIRS), corpus, log=lambda m: print(m, file=sys.stderr))
    return (df.filter(pl.col("lang").is_in(["zh", "en"]))
              .select("prompt", "lang", "response")
              .unique("prompt", keep="first", maintain_order=True))


def build_corpus(base: pl.DataFrame, rows: int, near_dups: float, copies: float, seed: int) -> pl.DataFrame:
    """``rows`` rows: the real prompts, spliced rows to fill, planted near-duplicates and exact copies."""
    n_near, n_copy = int(rows * near_dups), int(rows * copies)
    n_distinct = max(rows - n_near - n_copy, 1)
    real = base.head(n_distinct)
    parts = [real]
    missing = n_distinct - real.height
    if missing > 0:  # splice: same-language halves of two real prompts
        share = base.group_by("lang").len().with_columns(pl.col("len") / pl.col("len").sum())
        for i, (lang, frac) in enumerate(share.sort("lang").iter_rows()):
            pool = base.filter(pl.col("lang") == lang)
            k = round(missing * frac) if i < share.height - 1 else missing - sum(p.height for p in parts[1:])
            a = pool.sample(k, with_replacement=True, seed=seed + 2 * i)
            b = pool.sample(k, with_replacement=True, seed=seed + 2 * i + 1)
            parts.append(pl.DataFrame({
                "prompt": shared_corpus.spliced(a["prompt"], b["prompt"]),
                "lang": a["lang"], "response": pl.Series([None] * k, dtype=pl.Utf8)}))
    distinct = pl.concat(parts)
    near = distinct.sample(n_near, with_replacement=True, seed=seed + 100).with_row_index("_i")
    kind = pl.col("_i") % 4
    length = pl.col("prompt").str.len_chars()
    wrapper = pl.when(pl.col("lang") == "zh").then(pl.lit(WRAPPERS["zh"][0])).otherwise(pl.lit(WRAPPERS["en"][0]))
    edited = (pl.when(kind == 0).then(wrapper + pl.col("prompt"))
                .when(kind == 1).then(pl.col("prompt") + pl.lit("?!"))
                .when(kind == 2).then(pl.col("prompt").str.slice(0, length // 2)
                                      + pl.col("prompt").str.slice(length // 2 + 3))
                .otherwise(pl.col("prompt").str.replace_all(" ", "  ")))
    near = near.with_columns(edited.alias("prompt")).drop("_i")
    copy = distinct.sample(n_copy, with_replacement=True, seed=seed + 200)
    out = pl.concat([distinct, near, copy]).sample(fraction=1.0, shuffle=True, seed=seed + 300)
    return out.with_row_index("n").select(pl.format("row-{}", "n").alias("id"), "prompt", "response")


def with_answers(df: pl.DataFrame, chars: int) -> pl.DataFrame:
    """Every row with an answer of about ``chars`` characters, half of it reasoning: the start of its prompt repeated
    (rows stay distinct) around a refusal, as a synthesized corpus carries."""
    half = pl.col("prompt").str.slice(0, 60).repeat_by(chars // 2 // 61 + 1).list.join(" ").str.slice(0, chars // 2)
    return df.with_columns(pl.concat_str([pl.lit("<think>"), half, pl.lit("</think>I can't help with that. "), half])
                           .alias("response"))


def pipeline_yaml(data: Path, run_dir: Path, select: int, embed_band: float | None,
                  model_dir: Path | None = None, content: str = "prompts") -> str:
    keys = []
    if embed_band is not None:
        keys.append(f"embed_band: {embed_band}")
    if model_dir is not None:
        keys.append(f"model_dir: {model_dir}")
    classify = "{" + ", ".join(keys) + "}"
    return f"""name: million
run_dir: {run_dir}
report: false
stages:
  - collect:
      sources:
        - {{name: mined, path: {data}, format: parquet, license: CC BY-NC-SA 4.0,
           fields: {{prompt: prompt, response: response, id: id}}}}
  - dedup: {{threshold: 0.8}}
  - classify: {classify}
  - balance: {{seed: 0, total: {select}, test_fraction: 0.05, pending: keep}}
  - export: {{content: {content}, plots: false}}
"""


class Sampler(threading.Thread):
    """Peak RSS of a process per stage: polls /proc/<pid>/status; the stage is set from the run's log lines.
    Also the peak RSS of each of its child processes (the Dask engine's worker processes), by PID."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stage, self.peak, self.done = pid, "start-up", {}, False
        self.children: dict[int, int] = {}  # worker PID -> peak RSS MB

    def run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while not self.done:
            try:
                rss = _rss_mb(status)
            except (OSError, StopIteration):
                break
            self.peak[self.stage] = max(self.peak.get(self.stage, 0), rss)
            for child in _children(self.pid):
                try:
                    self.children[child] = max(self.children.get(child, 0), _rss_mb(Path(f"/proc/{child}/status")))
                except (OSError, StopIteration):
                    pass
            time.sleep(0.05)


def _rss_mb(status: Path) -> int:
    return next(int(l.split()[1]) for l in status.read_text().splitlines() if l.startswith("VmRSS:")) // 1024


def _children(pid: int) -> list[int]:
    """Direct child processes that are Dask workers: processes multiprocessing spawned (the LocalCluster's), not its
    resource tracker nor any short-lived helper the run starts (one such, under 1 MB, once counted as a worker)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return [c for c in out if b"spawn_main" in _cmdline(c)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def run_pipeline(pipe: Path, log_path: Path, flags: list[str]) -> tuple[float, dict[str, int], int, list[int]]:
    """``curate run`` in its own process: wall seconds, peak RSS (MB) per stage, exit code, peak RSS (MB) of
    each worker process it started."""
    started = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("curate")), "run", str(pipe), "--force", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    sampler = Sampler(proc.pid)
    sampler.start()
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            for line in proc.stdout:
                log.write(line)
                for stage in STAGES:
                    if line.startswith(f"[{stage}] running"):
                        sampler.stage = stage
        code = proc.wait()
    finally:
        if proc.poll() is None:  # interrupted: stop the run we started
            proc.terminate()
            proc.wait()
        sampler.done = True
        sampler.join()
    return time.perf_counter() - started, sampler.peak, code, sorted(sampler.children.values())


def report(run_dir: Path, wall: float, peak: dict[str, int], rows: int, load: tuple[float, ...], engine: str = "local",
           workers: list[int] | None = None) -> dict:
    stages = {}
    for stage in STAGES:
        manifest = next(run_dir.glob(f"[0-9][0-9]-{stage}/_manifest.json"))
        m = json.loads(manifest.read_text())
        stages[stage] = {"seconds": m["seconds"], "rows_in": m["rows_in"] or m["rows_out"], "rows_out": m["rows_out"],
                         "peak_rss_mb": peak.get(stage), "stats": m.get("stats", {})}
    in_stages = sum(s["seconds"] for s in stages.values())
    answers = stages["export"]["stats"].get("content") == "answers"
    print(f"\n{rows:,} rows through collect -> dedup -> classify -> balance -> export "
          f"({'answered rows' if answers else 'prompt set'}), engine {engine}")
    print(f"load average at start {load[0]:.1f} / 1 min, at end {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    print(f"{'stage':<10} {'seconds':>9} {'share':>7} {'records/s':>11} {'peak RSS MB':>12}")
    for name, s in stages.items():
        rate = s["rows_in"] / s["seconds"] if s["seconds"] else float("inf")
        print(f"{name:<10} {s['seconds']:>9.1f} {s['seconds'] / wall:>7.1%} {rate:>11,.0f} {s['peak_rss_mb'] or 0:>12,}")
    other = wall - in_stages
    print(f"{'other':<10} {other:>9.1f} {other / wall:>7.1%} {'':>11} {peak.get('start-up', 0):>12,}"
          "   (process start, reading/writing stage outputs, funnel)")
    print(f"{'total':<10} {wall:>9.1f} {1:>7.0%} {rows / wall:>11,.0f} {max(peak.values(), default=0):>12,}")
    classify = stages["classify"]["stats"]
    print(f"classify: {classify.get('embedding_layer', 0):,} of {classify.get('classified', 0):,} rows went through "
          "the sentence-embedding layer")
    exported = stages["export"]["stats"].get("exported")
    print(f"dedup dropped {stages['dedup']['stats'].get('duplicates', '?')} duplicates; export: {exported:,} "
          f"{'answered rows' if answers else 'prompts'}")
    if workers:
        print(f"peak RSS MB per worker process: {', '.join(f'{mb:,}' for mb in workers)}")
    return {"rows": rows, "engine": engine, "peak_rss_mb_per_worker": workers or [], "wall_seconds": round(wall, 2), "other_seconds": round(other, 2),
            "peak_rss_mb": max(peak.values(), default=0), "load_average": [round(x, 2) for x in load],
            "stages": {k: {kk: vv for kk, vv in v.items() if kk != "stats"} for k, v in stages.items()},
            "embedding_layer_rows": classify.get("embedding_layer", 0)}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*STAGES, "other"]
    secs = [result["stages"][s]["seconds"] for s in STAGES] + [result["other_seconds"]]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(names[::-1], secs[::-1], color="#4c72b0")
    for y, v in enumerate(secs[::-1]):
        ax.text(v, y, f" {v:.1f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds")
    ax.set_title(f"curate run, {result['rows']:,} rows: {result['wall_seconds']:.0f} s wall, "
                 f"peak {result['peak_rss_mb']:,} MB (load {result['load_average'][0]:.1f})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--near-dups", type=float, default=0.10, help="share of planted near-duplicates")
    ap.add_argument("--copies", type=float, default=0.02, help="share of exact copies")
    ap.add_argument("--select", type=int, default=50_000, help="prompts balance selects for synthesis")
    ap.add_argument("--answer-chars", type=int, default=0,
                    help="give every row an answer of about this many characters, half reasoning (a corpus after "
                         "synthesis; export then writes the answered rows)")
    ap.add_argument("--embed-band", type=float, default=None, help="classify's embed_band (default: the stage's)")
    ap.add_argument("--model-dir", type=Path, help="classify's model_dir (default: the shipped model)")
    ap.add_argument("--work", type=Path, default=REPO / ".cache" / "million", help="corpus, run folder, log")
    ap.add_argument("--corpus", type=Path, default=REPO / ".cache" / "bench_corpus.parquet")
    ap.add_argument("--plot", type=Path, help="write the time-per-stage chart (PNG) here")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine", choices=("local", "dask"), default="local",
                    help="dask: run the local engine, then the Dask engine, on the same corpus (both printed)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the Dask engine's LocalCluster")
    ap.add_argument("--shard-rows", type=int, default=20_000, help="rows per shard of the Dask engine")
    args = ap.parse_args()
    if not shared_corpus.SHARED.is_dir():
        print(f"skipped: {shared_corpus.SHARED} (the public datasets) is not present", file=sys.stderr)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    answered = f"-a{args.answer_chars}" if args.answer_chars else ""
    data = args.work / f"corpus-{args.rows}{answered}.parquet"
    if not data.exists() or pl.scan_parquet(data).select(pl.len()).collect().item() != args.rows:  # else stale
        t = time.perf_counter()
        corpus = build_corpus(base_rows(args.corpus), args.rows, args.near_dups, args.copies, args.seed)
        (with_answers(corpus, args.answer_chars) if args.answer_chars else corpus).write_parquet(data)
        print(f"corpus: {args.rows:,} rows in {time.perf_counter() - t:.1f}s -> {data}", file=sys.stderr)
    engines = ["local"] if args.engine == "local" else ["local", "dask"]
    results = {}
    for engine in engines:
        suffix = answered + ("" if engine == "local" else f"-{engine}")
        run_dir = args.work / f"run-{args.rows}{suffix}"
        pipe = args.work / f"million-{args.rows}{suffix}.yaml"
        pipe.write_text(pipeline_yaml(data, run_dir, min(args.select, args.rows // 4), args.embed_band,
                                      args.model_dir, "answers" if args.answer_chars else "prompts"),
                        encoding="utf-8")
        flags = [] if engine == "local" else ["--engine", "dask", "--dask-workers", str(args.workers)]
        if engine == "dask":  # shard size: a YAML key (no flag)
            pipe.write_text(pipe.read_text(encoding="utf-8").replace(
                "report: false\n", f"report: false\ndask: {{shard_rows: {args.shard_rows}}}\n"), encoding="utf-8")
        load = os.getloadavg()
        log_path = args.work / f"run-{args.rows}{suffix}.log"
        wall, peak, code, workers = run_pipeline(pipe, log_path, flags)
        if code != 0:
            print(f"curate run failed (exit {code}); see {log_path}", file=sys.stderr)
            return code
        results[engine] = report(run_dir, wall, peak, args.rows, load, engine, workers)
    if len(results) > 1:
        equal = same_outputs(args.work / f"run-{args.rows}", args.work / f"run-{args.rows}-dask")
        print(f"\noutputs of every stage equal (every column of every row): {'yes' if equal else 'NO'}")
        result = {**results, "equal": equal}
    else:
        result = results["local"]
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    if args.plot:
        plot(results["local"], args.plot)
        print(f"plot: {args.plot}")
    return 0 if result.get("equal", True) else 1


def same_outputs(a: Path, b: Path) -> bool:
    sys.path.insert(0, str(REPO))
    from curate.store import RunStore

    left, right = RunStore.existing(a), RunStore.existing(b)
    for stage in left.finished_stages():
        if not left.read_stage(stage.index, stage.name).equals(right.read_stage(stage.index, stage.name)):
            print(f"{stage.name}: outputs differ", file=sys.stderr)
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
