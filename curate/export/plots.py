"""PNG plots for the card, drawn with the run report's plot functions (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from curate.records import INELIGIBLE, NOT_SELECTED
from curate.summary import DatasetSummary

IMAGES = "images"


def balance_input(df: pl.DataFrame) -> pl.DataFrame:
    """Rows still live before balance: kept now, or dropped by balance (not selected, or not usable)."""
    return df.filter(pl.col("drop_reason").is_null() | pl.col("drop_reason").is_in([NOT_SELECTED, *INELIGIBLE]))


def write_plots(folder: Path, df: pl.DataFrame, exported: pl.DataFrame, summary: DatasetSummary) -> dict[str, str]:
    """Write the PNGs into ``folder/images``; returns {title: relative path} for the card."""
    from curate.report import plots

    out = folder / IMAGES
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "Rows per dimension before and after balancing": ("dimensions.png", lambda: plots.before_after(
            balance_input(df), exported)),
        "Rows per language": ("languages.png", lambda: plots.bars(dict(sorted(summary.languages.items())),
                                                                   "Exported rows per language")),
        "Rows per kind": ("kinds.png", lambda: plots.bars(dict(sorted(summary.kinds.items())),
                                                          "Exported rows per kind")),
    }
    written = {}
    for title, (name, draw) in figures.items():
        (out / name).write_bytes(draw())
        written[title] = f"{IMAGES}/{name}"
    return written
