"""Specific over generic: a catch-all dimension (S05 "illegal or unethical") is predicted only when no specific
dimension is close to it.

Many sources label coarsely ("crimes and illegal activities"), so the catch-all learns "anything illegal" and
outscores the specific dimension a row belongs to. The rule: on a harmful row, when some specific dimension
scores at least ``ratio`` times the catch-all's score, the catch-all is dropped and the best specific dimension is
kept (chosen if it was not). The catch-all's own rows, where no specific dimension comes close, keep it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def prefer_specific(chosen: np.ndarray, harm: np.ndarray, labels: Sequence[str], generic: Sequence[str],
                    ratio: float | None) -> np.ndarray:
    """``chosen`` (rows x harm labels, bool) after the rule; ``harm`` holds the scores in the same columns.
    ``ratio`` None (or no generic label among ``labels``) leaves ``chosen`` as it is."""
    generic_cols = [j for j, label in enumerate(labels) if label in set(generic)]
    specific_cols = [j for j, label in enumerate(labels) if label not in set(generic)]
    if ratio is None or not generic_cols or not specific_cols:
        return chosen
    out = chosen.copy()
    specific = harm[:, specific_cols]
    best = specific.argmax(axis=1)
    best_score = specific[np.arange(len(harm)), best]
    for g in generic_cols:
        close = out[:, g] & (best_score >= ratio * harm[:, g]) & (best_score > 0)
        out[close, g] = False
        out[np.flatnonzero(close), np.asarray(specific_cols)[best[close]]] = True
    return out
