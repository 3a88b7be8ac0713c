"""Precision / recall / F1 per dimension, macro-F1 and binary harmful-vs-safe, overall and per language."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from curate.classify.labels import SAFE


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def multilabel(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: Sequence[str],
               min_support: int = 5) -> dict[str, Any]:
    """Per-label scores and macro-F1 over the labels with at least ``min_support`` gold rows (a label seen
    once or twice gives a 0-or-1 F1 that says nothing).

    An empty prediction or gold list counts as S00 (safe).
    """
    g = [set(x) or {SAFE} for x in gold]
    p = [set(x) or {SAFE} for x in pred]
    per: dict[str, Any] = {}
    for label in labels:
        tp = sum(1 for a, b in zip(g, p) if label in a and label in b)
        fp = sum(1 for a, b in zip(g, p) if label not in a and label in b)
        fn = sum(1 for a, b in zip(g, p) if label in a and label not in b)
        if tp + fn == 0 and fp == 0:
            continue
        per[label] = {**_prf(tp, fp, fn), "support": tp + fn}
    scored = [v["f1"] for v in per.values() if v["support"] >= max(min_support, 1)]
    return {"per_label": per, "macro_f1": round(float(np.mean(scored)), 4) if scored else None, "rows": len(g),
            "macro_labels": len(scored), "min_support": min_support}


def binary(gold: Sequence[bool], pred: Sequence[bool]) -> dict[str, Any]:
    """Harmful (positive) vs safe."""
    g = np.asarray(gold, dtype=bool)
    p = np.asarray(pred, dtype=bool)
    tp, fp, fn = int((g & p).sum()), int((~g & p).sum()), int((g & ~p).sum())
    out = _prf(tp, fp, fn)
    out.update({"rows": int(len(g)), "positives": int(g.sum()),
                "accuracy": round(float((g == p).mean()), 4) if len(g) else None})
    return out


def best_threshold(y: np.ndarray, s: np.ndarray, grid: np.ndarray | None = None,
                   objective: str = "f1") -> tuple[float, float]:
    """The threshold on score ``s`` that maximises ``objective`` for labels ``y`` (ties: the lower threshold).

    ``f1``: F1 of the positive class. ``macro``: the mean F1 of both classes, for decisions where the
    positive class is the majority (harmful vs safe): positive-class F1 alone would reward calling everything
    harmful.
    """
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2) if grid is None else grid
    y = y.astype(bool)
    if not y.any():
        return 0.5, 0.0
    pred = s[None, :] >= grid[:, None]
    tp = (pred & y).sum(axis=1)
    fp = (pred & ~y).sum(axis=1)
    fn = (~pred & y).sum(axis=1)
    tn = (~pred & ~y).sum(axis=1)
    f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    if objective == "macro":
        f1_neg = np.where(tn > 0, 2 * tn / np.maximum(2 * tn + fn + fp, 1), 0.0)
        f1 = (f1 + f1_neg) / 2
    i = int(np.argmax(f1))
    return float(grid[i]), float(f1[i])


def flag_tradeoff(harmful: np.ndarray, margin: np.ndarray, benign_group: np.ndarray,
                  shifts: Sequence[float]) -> list[dict[str, Any]]:
    """The harmful flag as a safety decision, for each threshold shift ``s`` (flag a row when its harm score minus
    its threshold, ``margin``, is at least ``-s``): recall on harmful rows and, per benign group (e.g. look-alikes,
    other benign), the share of benign rows flagged. ``harmful``: gold flag; ``benign_group``: a name per row
    (ignored on harmful rows)."""
    harmful = np.asarray(harmful, dtype=bool)
    margin = np.asarray(margin, dtype=np.float64)
    groups = np.asarray(benign_group, dtype=object)
    out = []
    for s in shifts:
        flagged = margin >= -s
        row: dict[str, Any] = {"shift": round(float(s), 3), "harmful_rows": int(harmful.sum()),
                               "recall": round(float(flagged[harmful].mean()), 4) if harmful.any() else None}
        for name in sorted({g for g in groups[~harmful].tolist() if g is not None}):
            sel = ~harmful & (groups == name)
            row[f"flagged_{name}"] = round(float(flagged[sel].mean()), 4)
            row[f"rows_{name}"] = int(sel.sum())
        out.append(row)
    return out
