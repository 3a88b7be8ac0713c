"""Suite items that also sit in a training corpus, found with the dedup stage's shingles and overlap."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from curate.dedup.decontaminate import best_overlap
from curate.dedup.options import DedupOptions
from curate.dedup.shingles import shingle
from curate.eval.suite import read_records_or_export


def read_training_prompts(paths: list[Path]) -> pl.Series:
    """Prompts of curate records or export folders (every split of an export)."""
    texts = [read_records_or_export(path, None)["prompt"] for path in paths]
    return pl.concat(texts).cast(pl.Utf8).fill_null("") if texts else pl.Series("prompt", [], pl.Utf8)


def flag_in_train(items: pl.DataFrame, paths: list[Path], threshold: float) -> pl.DataFrame:
    """Add ``train_overlap`` (best shingle overlap with any training prompt) and ``in_train``."""
    spec = DedupOptions().shingling()
    train = read_training_prompts(paths)
    # overlap coefficient is symmetric: the suite's base prompts take the "rows" side, the corpus the "eval" side
    best, _ = best_overlap(shingle(items["base_prompt"], spec), shingle(train, spec))
    best = np.round(best, 4)
    return items.with_columns(pl.Series("train_overlap", best),
                              pl.Series("in_train", best >= threshold - 1e-12))
