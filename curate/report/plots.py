"""Static plots (matplotlib, Agg backend) returned as PNG bytes. Labels stay ASCII: dimension ids, not CJK names,
so they render without a CJK font."""
from __future__ import annotations

import io
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from curate.funnel import Funnel  # noqa: E402
from curate.taxonomy import SAFE  # noqa: E402

PALETTE = ["#3b6ea5", "#e07b39", "#5a9e5a", "#b34a4a", "#8a6bb1", "#7f7f7f"]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def funnel_plot(funnel: Funnel) -> bytes:
    rows = funnel.rows()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1))
    names = [r[0] for r in rows][::-1]
    values = [r[1] for r in rows][::-1]
    colors = [PALETTE[2] if n.startswith("kept") else PALETTE[0] if n.startswith("collected") else PALETTE[1]
              for n in names]
    ax.barh(names, values, color=colors)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,}", va="center", fontsize=8)
    ax.set_xlabel("records")
    ax.set_title("Where every collected record ended up")
    return _png(fig)


def explode_categories(df: pl.DataFrame) -> pl.DataFrame:
    """One row per (record, dimension); records with no dimension count as S00 (safe)."""
    return df.with_columns(pl.when(pl.col("categories").list.len() == 0).then(pl.lit([SAFE]))
                           .otherwise(pl.col("categories")).alias("dim")).explode("dim")


def heatmap(df: pl.DataFrame, title: str) -> bytes:
    counts = explode_categories(df).group_by("dim", "lang").len()
    dims = sorted(counts["dim"].unique().to_list())
    langs = sorted(counts["lang"].unique().to_list())
    grid = [[0] * len(langs) for _ in dims]
    for row in counts.iter_rows(named=True):
        grid[dims.index(row["dim"])][langs.index(row["lang"])] = row["len"]
    fig, ax = plt.subplots(figsize=(1.1 * len(langs) + 3, 0.32 * len(dims) + 1.5))
    im = ax.imshow(grid, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(dims)), dims)
    peak = max((max(r) for r in grid), default=0)
    for i, r in enumerate(grid):
        for j, v in enumerate(r):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > peak / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set_title(title)
    return _png(fig)


def before_after(before: pl.DataFrame, after: pl.DataFrame) -> bytes:
    b = dict(explode_categories(before).group_by("dim").len().iter_rows())
    a = dict(explode_categories(after).group_by("dim").len().iter_rows())
    dims = sorted(set(b) | set(a))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    x = range(len(dims))
    ax.bar([i - 0.2 for i in x], [b.get(d, 0) for d in dims], width=0.4, label="before balance", color=PALETTE[0])
    ax.bar([i + 0.2 for i in x], [a.get(d, 0) for d in dims], width=0.4, label="after balance", color=PALETTE[1])
    ax.set_xticks(list(x), dims, rotation=45)
    ax.set_ylabel("records")
    ax.legend()
    ax.set_title("Records per dimension before and after balancing")
    return _png(fig)


def lengths(df: pl.DataFrame) -> bytes:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for ax, col in zip(axes, ("prompt", "response")):
        for k, lang in enumerate(sorted(df["lang"].unique().to_list())[:5]):
            values = df.filter(pl.col("lang") == lang)[col].drop_nulls().str.len_chars().to_list()
            if values:
                ax.hist(values, bins=40, alpha=0.6, label=lang, color=PALETTE[k % len(PALETTE)])
        ax.set_title(f"{col} length (characters)")
        ax.set_yscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _png(fig)


def cluster_sizes(df: pl.DataFrame) -> bytes:
    sizes = df.filter(pl.col("dup_cluster").is_not_null()).group_by("dup_cluster").len()["len"]
    fig, ax = plt.subplots(figsize=(6, 3))
    if sizes.len():
        counts = sizes.value_counts().sort("len")
        ax.bar(counts["len"].cast(pl.Utf8).to_list(), counts["count"].to_list(), color=PALETTE[0])
        ax.set_yscale("log")
    ax.set_xlabel("cluster size (records)")
    ax.set_ylabel("clusters")
    ax.set_title("Near-duplicate cluster sizes")
    return _png(fig)


def confidence(df: pl.DataFrame) -> bytes:
    top = []
    for value in df["category_scores"].drop_nulls().to_list():
        try:
            scores = json.loads(value)
        except json.JSONDecodeError:
            continue
        if isinstance(scores, dict) and scores:
            top.append(max(float(v) for v in scores.values()))
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(top, bins=20, range=(0, 1), color=PALETTE[4])
    ax.set_xlabel("highest dimension score per record")
    ax.set_ylabel("records")
    ax.set_title("Classifier confidence")
    return _png(fig)


def bars(counts: dict[str, int], title: str, xlabel: str = "") -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3))
    names = list(counts)
    ax.bar(names, [counts[n] for n in names], color=PALETTE[: len(names)] or PALETTE[0])
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    for i, n in enumerate(names):
        ax.text(i, counts[n], f"{counts[n]:,}", ha="center", va="bottom", fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=20)
    return _png(fig)
