"""Local engine vs Dask engine on the same rows: wall time and rows/s per stage, peak memory, equal output.

The rows: the bundled quickstart collected once (3,610 records), repeated with a numbered suffix per copy
until --rows (every copy a new id; a copy of a prompt is a near-duplicate of it, so dedup has real work).
Each engine runs dedup then classify in a fresh process of its own (so peak RSS is that engine's): the
local engine in that process, the Dask engine on a LocalCluster of --workers processes on 127.0.0.1
(one thread each). Classify uses fastText alone unless --embed (the sentence encoder is not
batch-invariant: with it, scores may differ in the 4th decimal, see docs/scale-out.md).

    python benchmarks/dask_bench.py --rows 200000 --workers 2
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_rows(rows: int, folder: Path) -> Path:
    from curate.pipeline import run_pipeline

    run = run_pipeline(ROOT / "pipelines" / "quickstart.yaml", run_dir=folder / "collect", to_stage="collect",
                       log=lambda m: None)
    base = run.final
    copies = -(-rows // base.height)
    frames = [base.with_columns((pl.col("source_id") + f"#{k}").alias("source_id"),
                                (pl.col("prompt") + (f" ({k})" if k else "")).alias("prompt"))
              for k in range(copies)]
    from curate.records import make_id

    df = pl.concat(frames).head(rows)
    df = df.with_columns(pl.struct("source", "source_id").map_elements(
        lambda r: make_id(r["source"], r["source_id"]), return_dtype=pl.Utf8).alias("id"))
    path = folder / "input.parquet"
    df.write_parquet(path)
    return path


def measure(engine_name: str, workers: int, shard_rows: int, embed: bool, data: Path, out: Path) -> dict:
    """One engine, dedup then classify; runs in its own process (see main)."""
    from curate.classify import STAGE as CLASSIFY
    from curate.dedup import STAGE as DEDUP
    from curate.engine import DaskSettings, EngineSettings, open_engine
    from curate.contract import run_stage
    from curate.stage import StageContext

    df = pl.read_parquet(data)
    settings = EngineSettings(engine=engine_name, dask=DaskSettings(local_workers=workers, shard_rows=shard_rows))
    figures: dict = {"engine": engine_name, "rows": df.height}
    started = time.perf_counter()
    with open_engine(settings, log=lambda m: None) as engine:
        figures["start_s"] = round(time.perf_counter() - started, 2)
        for stage, options in ((DEDUP, DEDUP.Options()), (CLASSIFY, CLASSIFY.Options(embed_band=0.3 if embed else 0))):
            ctx = StageContext(stage=stage.name, work_dir=out.parent / f"cache-{engine_name}", engine=engine,
                               log=lambda m: None)
            t = time.perf_counter()
            df = run_stage(stage, df, options, ctx)
            seconds = time.perf_counter() - t
            figures[stage.name] = {"seconds": round(seconds, 2), "rows_per_s": round(df.height / seconds)}
        if engine_name == "dask":
            worker_kb = engine.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            figures["peak_mb_per_worker"] = sorted(round(kb / 1024) for kb in worker_kb.values())
    figures["wall_s"] = round(time.perf_counter() - started, 2)
    figures["peak_mb_driver"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    df.write_parquet(out)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-rows", type=int, default=20_000)
    parser.add_argument("--embed", action="store_true", help="classify with the sentence-embedding layer too")
    parser.add_argument("--only", choices=["local", "dask"], help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.workers, args.shard_rows, args.embed, args.data, args.out)))
        return
    with tempfile.TemporaryDirectory(prefix="curate-dask-bench-") as tmp:
        data = build_rows(args.rows, Path(tmp))
        results = {}
        for name in ("local", "dask"):
            cmd = [sys.executable, __file__, "--only", name, "--workers", str(args.workers), "--shard-rows",
                   str(args.shard_rows), "--data", str(data), "--out", str(Path(tmp) / f"{name}.parquet"),
                   *(["--embed"] if args.embed else [])]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        local, dask = (pl.read_parquet(Path(tmp) / f"{n}.parquet") for n in ("local", "dask"))
        equal = local.equals(dask)
    print(f"{args.rows:,} rows, dask: {args.workers} workers x 1 thread, shards of {args.shard_rows:,} rows; "
          f"classify {'with' if args.embed else 'without'} the embedding layer")
    print(f"{'engine':8} {'dedup s':>8} {'rows/s':>9} {'classify s':>11} {'rows/s':>9} {'wall s':>7} "
          f"{'peak MB driver':>15}  peak MB per worker")
    for name, r in results.items():
        print(f"{name:8} {r['dedup']['seconds']:8.1f} {r['dedup']['rows_per_s']:9,} {r['classify']['seconds']:11.1f} "
              f"{r['classify']['rows_per_s']:9,} {r['wall_s']:7.1f} {r['peak_mb_driver']:15,}  "
              f"{r.get('peak_mb_per_worker', '-')}")
    print(f"outputs equal (every column of every row): {equal}")
    if not equal:
        sys.exit(1)


if __name__ == "__main__":
    main()
