"""`curate eval compare A B`: B minus A per metric x dimension x language x attack, with the difference's
95% interval (Newcombe) and an exact McNemar test on the items both runs scored (paired by item id).

A difference is marked significant when McNemar's p < alpha on the shared items (or, with no shared
items, when the difference's interval excludes 0).
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from curate.eval import results
from curate.eval.stats import difference, mcnemar
from curate.eval.summary import CELL_KEYS, LOWER_IS_BETTER, METRICS, grouped

ALPHA = 0.05


def compare(a_dir: Path, b_dir: Path, alpha: float = ALPHA) -> dict:
    a_summary, a_items = results.load(a_dir)
    b_summary, b_items = results.load(b_dir)
    paired = _paired_counts(a_items, b_items)
    b_cells = {tuple(c[k] for k in CELL_KEYS): c for c in b_summary["cells"]}
    rows = []
    for a_cell in a_summary["cells"]:
        key = tuple(a_cell[k] for k in CELL_KEYS)
        if key in b_cells:
            rows.append(_row(dict(zip(CELL_KEYS, key)), a_cell, b_cells[key], paired.get(key), alpha))
    overall = {}
    for metric in METRICS:
        a, b = a_summary.get(metric), b_summary.get(metric)
        if a and b:
            overall[metric] = _row({"metric": metric}, a, b, paired.get((metric, "all", "all", "all"))
                                   or paired.get((metric, "all", "all", "none")), alpha)
    return {"a": {"dir": str(a_dir), "model": a_summary.get("model"), "system_prompt": a_summary.get("system_prompt")},
            "b": {"dir": str(b_dir), "model": b_summary.get("model"), "system_prompt": b_summary.get("system_prompt")},
            "alpha": alpha, "overall": overall, "cells": rows,
            "lengths": {m: {"a": a_summary["lengths"].get(m), "b": b_summary["lengths"].get(m)}
                        for m in METRICS if m in a_summary["lengths"] and m in b_summary["lengths"]}}


def _row(key: dict, a: dict, b: dict, pair: dict | None, alpha: float) -> dict:
    d, low, high = difference(a, b)
    out = {**key, "a": a["rate"], "b": b["rate"], "n_a": a["n"], "n_b": b["n"], "difference": d, "low": low,
           "high": high, "small": bool(a.get("small") or b.get("small"))}
    if pair and pair["shared"]:
        p = mcnemar(pair["only_a"], pair["only_b"])
        out.update(shared=pair["shared"], only_a=pair["only_a"], only_b=pair["only_b"], p_value=p,
                   significant=p < alpha)
    else:
        out.update(shared=0, p_value=None, significant=low > 0 or high < 0)
    out["better"] = (d < 0 if key["metric"] in LOWER_IS_BETTER else d > 0) if d else None
    return out


def _paired_counts(a_items: pl.DataFrame, b_items: pl.DataFrame) -> dict[tuple, dict]:
    """Per cell: items scored in both runs, and those only A / only B got right (the discordant pairs)."""
    cols = ["item_id", "metric", "dimensions", "lang", "attack", "success"]
    a = a_items.filter(pl.col("success").is_not_null()).select(cols)
    b = b_items.filter(pl.col("success").is_not_null()).select("item_id", pl.col("success").alias("success_b"))
    both = a.join(b, on="item_id", how="inner")
    counts = grouped(both, [pl.len().alias("shared"),
                            (pl.col("success") & ~pl.col("success_b")).sum().alias("only_a"),
                            (~pl.col("success") & pl.col("success_b")).sum().alias("only_b")])
    return {tuple(r[k] for k in CELL_KEYS): r for r in counts.iter_rows(named=True)}
