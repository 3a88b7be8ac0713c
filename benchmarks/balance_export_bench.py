"""Balance and export on a synthetic corpus: rows/s, against a baseline measured in the same run.

Baseline for balance: one pass of ``iter_rows`` over the same frame with meta parsed (the per-row
work balance cannot avoid). Baseline for export: ``polars.write_parquet`` of the same kept rows (the
raw cost of writing the data without conversion, card or plots).

    python benchmarks/balance_export_bench.py [--rows 200000]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from curate import records  # noqa: E402
from curate.balance import STAGE as BALANCE  # noqa: E402
from curate.export import STAGE as EXPORT  # noqa: E402
from curate.stage import StageContext  # noqa: E402


def corpus(n: int, seed: int = 0) -> pl.DataFrame:
    rnd = random.Random(seed)
    dims = [f"S{i:02d}" for i in range(1, 15)]
    rows = []
    for i in range(n):
        general = rnd.random() < 0.1
        harmful = None if general else rnd.random() < 0.75
        rows.append({
            "id": f"{i:012x}", "source": f"src{i % 5}", "source_id": str(i),
            "source_license": "CC BY-NC 4.0" if i % 5 == 0 else "MIT", "lang": rnd.choice(["en", "zh"]),
            "prompt": f"prompt number {i} " * 4, "response": f"answer {i} " * 10, "reasoning": f"thinking {i} " * 20,
            "prompt_harmful": harmful, "categories": [] if not harmful else [rnd.choice(dims[: rnd.randint(1, 14)])],
            "label_origin": "human" if rnd.random() < 0.05 else "classifier", "dup_cluster": f"c{i // 3}",
            "meta": json.dumps({"collect": {"role": "general" if general else "safety"},
                                "synthesize": {"model": "m", "template": "en/refusal.v1",
                                               "judge_score": rnd.randint(5, 10)}}),
        })
    return records.conform(pl.DataFrame(rows, infer_schema_length=None))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    args = ap.parse_args()
    df = corpus(args.rows)
    tmp = Path(tempfile.mkdtemp())
    ctx = StageContext(stage="balance", work_dir=tmp, log=lambda m: None)
    opts = BALANCE.Options(seed=1, temperature=2.0, max_per_dimension=8000,
                           kinds={"refusal": 0.6, "helpful": 0.25, "general": 0.15}, languages={"en": 1, "zh": 1})
    _, base = timed(lambda: sum(1 for r in df.iter_rows(named=True) if records.load_meta(r["meta"])))
    out, t_bal = timed(lambda: BALANCE.run(df, opts, ctx))
    kept = out.filter(pl.col("drop_reason").is_null())
    print(f"balance: {args.rows:,} rows in {t_bal:.2f}s = {args.rows / t_bal:,.0f} rows/s; "
          f"baseline (iter_rows + meta parse) {base:.2f}s; ratio {t_bal / base:.1f}x; selected {kept.height:,}")
    ectx = StageContext(stage="export", work_dir=tmp, log=lambda m: None)
    _, t_exp = timed(lambda: EXPORT.run(out, EXPORT.Options(out=tmp / "ds"), ectx))
    _, t_nop = timed(lambda: EXPORT.run(out, EXPORT.Options(out=tmp / "ds2", plots=False), ectx))
    _, base = timed(lambda: kept.write_parquet(tmp / "baseline.parquet"))
    print(f"export: {kept.height:,} rows in {t_exp:.2f}s with plots ({t_nop:.2f}s without) = "
          f"{kept.height / t_exp:,.0f} rows/s; baseline (polars write_parquet) {base:.2f}s; "
          f"ratio {t_nop / base:.1f}x without plots")


if __name__ == "__main__":
    main()
