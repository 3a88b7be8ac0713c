"""`make bench`: run every benchmark in turn and print its figures (each measures its own baseline in the same run).

    python benchmarks/run_all.py            # all
    python benchmarks/run_all.py dedup synth # only these

Benchmarks that need the developers' public datasets (../shared/data) say so and are skipped.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# name -> (script, arguments). Order: cheapest first.
BENCHMARKS = {
    "synth": ("synth_bench.py", []),
    "dedup": ("dedup_bench.py", []),
    "startup": ("startup.py", []),  # whole-process curate dedup / classify on ~40k prompts vs library baselines
    "balance_export": ("balance_export_bench.py", []),
    "review": ("review_bench.py", []),
    "million": ("million.py", ["--plot", "docs/million.png"]),  # 1M rows through `curate run`
    "dask": ("dask_bench.py", ["--rows", "200000", "--workers", "2"]),  # local vs Dask engine, ~80 s
    "classify": ("classify_bench.py", ["--permissive", "--judge", "oracle"]),  # ~45 min on 2 cores
    "cascade": ("cascade_bench.py", []),  # the stage's cascade vs full blend vs a static screen, ~15 min
}


def main(selected: list[str]) -> int:
    unknown = [name for name in selected if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name, (script, args) in BENCHMARKS.items():
        if selected and name not in selected:
            continue
        path = HERE / script
        if not path.exists():
            print(f"== {name}: {script} not present, skipped")
            continue
        print(f"\n== {name}: python benchmarks/{script} {' '.join(args)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(path), *args], cwd=REPO)
        print(f"== {name}: exit {code} after {time.monotonic() - started:.0f}s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
