"""Which true dimension the classifier reads as which: confusion matrices of the top prediction.

A row's *top prediction* is its highest-scoring predicted dimension, or S00 when the row is not flagged harmful.
A row counts once under each of its gold dimensions, except when the top prediction is one of them (lenient:
any acceptable label is right): then it counts once, on the diagonal. Counts and row shares (share of the true
dimension's rows) are kept per language, in long form (one row per cell), so they read as a table or a plot.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import polars as pl

from curate.classify.labels import SAFE

MIN_ROWS = 20  # a true dimension needs this many rows before its confusions are named


def top_predictions(labels: Sequence[str], scores: np.ndarray, categories: Sequence[Sequence[str]]) -> list[str]:
    """Per row, the predicted dimension with the highest score (S00 when none is predicted)."""
    column = {label: j for j, label in enumerate(labels)}
    chosen = np.zeros(scores.shape, dtype=bool)
    pairs = pl.DataFrame({"cats": pl.Series(list(categories), dtype=pl.List(pl.Utf8))}).with_row_index("row") \
        .explode("cats").drop_nulls("cats")
    if pairs.height:
        chosen[pairs["row"].to_numpy(), pairs["cats"].replace_strict(column, return_dtype=pl.Int64).to_numpy()] = True
    masked = np.where(chosen, scores, -np.inf)
    best = masked.argmax(axis=1) if len(labels) else np.zeros(len(scores), dtype=np.int64)
    names = np.array(list(labels) or [SAFE], dtype=object)[best]
    return np.where(chosen.any(axis=1), names, SAFE).tolist()


def confusion(pred: pl.DataFrame, gold: str = "target", top: str = "pred_top") -> pl.DataFrame:
    """Long-form confusion per language: ``lang, true, pred, count, share`` (share of the true label's rows),
    over rows with a gold dimension list; ``lang`` "all" pools the languages."""
    rows = pred.filter(pl.col(gold).is_not_null()).select(
        "lang", pl.when(pl.col(gold).list.len() == 0).then(pl.lit([SAFE])).otherwise(pl.col(gold)).alias("true"),
        pl.col(top).alias("pred"))
    hit = pl.col("true").list.contains(pl.col("pred"))
    rows = rows.with_columns(pl.when(hit).then(pl.concat_list("pred")).otherwise(pl.col("true")).alias("true")) \
        .explode("true")
    both = pl.concat([rows, rows.with_columns(pl.lit("all").alias("lang"))])
    counts = both.group_by("lang", "true", "pred").len("count")
    return counts.with_columns((pl.col("count") / pl.col("count").sum().over("lang", "true")).round(4).alias("share")) \
        .sort("lang", "true", "pred")


def top_confusions(table: pl.DataFrame, n: int = 10, min_rows: int = MIN_ROWS) -> pl.DataFrame:
    """The ``n`` largest off-diagonal shares per language among true labels with at least ``min_rows`` rows."""
    sized = table.with_columns(pl.col("count").sum().over("lang", "true").alias("rows"))
    return sized.filter((pl.col("true") != pl.col("pred")) & (pl.col("rows") >= min_rows)) \
        .sort(["lang", "share", "true", "pred"], descending=[False, True, False, False]) \
        .group_by("lang", maintain_order=True).head(n)


def sink_share(table: pl.DataFrame, sink: str) -> dict[str, float | None]:
    """Per language, the share of rows of the *other* harm dimensions whose top prediction is ``sink``."""
    others = table.filter((pl.col("true") != sink) & (pl.col("true") != SAFE))
    out: dict[str, float | None] = {}
    for lang in sorted(others["lang"].unique().to_list()):
        part = others.filter(pl.col("lang") == lang)
        total = part["count"].sum()
        out[lang] = round(part.filter(pl.col("pred") == sink)["count"].sum() / total, 4) if total else None
    return out


def as_dict(table: pl.DataFrame) -> dict[str, Any]:
    """JSON form: ``{lang: {true: {pred: [count, share]}}}``."""
    out: dict[str, Any] = {}
    for lang, true, pred, count, share in table.select("lang", "true", "pred", "count", "share").iter_rows():
        out.setdefault(lang, {}).setdefault(true, {})[pred] = [count, share]
    return out


def from_dict(data: dict[str, Any]) -> pl.DataFrame:
    """The long-form table back from ``as_dict``."""
    rows = [(lang, true, pred, c, s) for lang, by_true in data.items() for true, by_pred in by_true.items()
            for pred, (c, s) in by_pred.items()]
    return pl.DataFrame(rows, schema={"lang": pl.Utf8, "true": pl.Utf8, "pred": pl.Utf8, "count": pl.UInt32,
                                      "share": pl.Float64}, orient="row")


def format_matrix(table: pl.DataFrame, lang: str) -> str:
    """A plain-text matrix for one language: row shares in percent, the row count at the end."""
    part = table.filter(pl.col("lang") == lang)
    if part.height == 0:
        return ""
    labels = sorted(set(part["true"].to_list()) | set(part["pred"].to_list()))
    cell = {(t, p): s for t, p, s in part.select("true", "pred", "share").iter_rows()}
    rows = dict(part.group_by("true").agg(pl.col("count").sum()).iter_rows())
    lines = [f"true \\ top prediction ({lang}, % of the true label's rows)",
             "      " + " ".join(f"{p:>4}" for p in labels) + "     n"]
    for t in sorted(rows):
        lines.append(f"{t:>5} " + " ".join(f"{round(100 * cell[(t, p)]):>4}" if (t, p) in cell else "   ."
                                           for p in labels) + f" {rows[t]:>5}")
    return "\n".join(lines)


def plot(tables: dict[str, pl.DataFrame], path, langs: Sequence[str] = ("en", "zh")) -> None:
    """Heatmaps of row shares, one row of panels per table (title), one column per language, written to ``path``
    (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(tables), len(langs), figsize=(5.2 * len(langs), 5 * len(tables)), squeeze=False)
    panels = [(ax, title, lang, t.filter(pl.col("lang") == lang))
              for ax_row, (title, t) in zip(axes, tables.items()) for ax, lang in zip(ax_row, langs)]
    for ax, title, lang, part in panels:
        if part.height == 0:
            ax.axis("off")
            continue
        labels = sorted(set(part["true"].to_list()) | set(part["pred"].to_list()))
        index = {label: i for i, label in enumerate(labels)}
        grid = np.full((len(labels), len(labels)), np.nan)
        for t, p, s in part.select("true", "pred", "share").iter_rows():
            grid[index[t], index[p]] = s
        ax.imshow(grid, vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("top prediction")
        ax.set_ylabel("true dimension")
        ax.set_title(f"{title} ({lang})", fontsize=9)
        for (i, j), s in np.ndenumerate(grid):
            if not np.isnan(s) and s >= 0.05:
                ax.text(j, i, f"{round(100 * s)}", ha="center", va="center", fontsize=6,
                        color="white" if s > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
