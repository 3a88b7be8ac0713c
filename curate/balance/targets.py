"""Quota arithmetic: how many rows each stratum (kind, dimension, language) should get.

The budget is split top-down, each level with largest-remainder rounding so the parts add up exactly:

1. total N -> kinds by the kind ratios (default N: the largest N no kind falls short of);
2. each kind -> dimensions with share ~ available^(1/temperature);
3. each dimension's rows (all kinds together) are clamped to its [min, max]; a dimension with no
   rows at all still gets its minimum, split over the harmful kinds, so the shortfall shows up;
4. each (kind, dimension) -> languages by the language ratio (default: the stratum's own mix).

A target above what is available is a shortfall: the input for another synthesis round.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Iterable, Mapping, TypeVar

from curate.kinds import GENERAL_DIMENSION, KINDS
from curate.balance.options import BalanceOptions

K = TypeVar("K", bound=Hashable)
Stratum = tuple[str, str, str]  # (kind, dimension, lang)
HARM_KINDS = ("refusal", "safe_completion")


def apportion(total: int, weights: Mapping[K, float]) -> dict[K, int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder, ties by key)."""
    out = {k: 0 for k in weights}
    positive = {k: w for k, w in weights.items() if w > 0}
    norm = sum(positive.values())
    if total <= 0 or norm <= 0:
        return out
    raw = {k: total * w / norm for k, w in positive.items()}
    for k, value in raw.items():
        out[k] = math.floor(value + 1e-9)
    left = total - sum(out.values())
    for k in sorted(positive, key=lambda k: (-(raw[k] - out[k]), str(k)))[:left]:
        out[k] += 1
    return out


def kind_ratios(opts: BalanceOptions, available: Mapping[str, int]) -> dict[str, float]:
    ratios = opts.kinds or {k: float(n) for k, n in available.items() if n > 0}
    return {k: r for k, r in ratios.items() if r > 0}


def default_total(ratios: Mapping[str, float], available: Mapping[str, int]) -> int:
    """The largest N whose kind shares all fit in what is available (kinds with no rows at all excluded)."""
    norm = sum(ratios.values())
    limits = [available[k] * norm / r for k, r in ratios.items() if available.get(k, 0) > 0]
    return math.floor(min(limits) + 1e-9) if limits else 0


def compute_targets(available: Mapping[Stratum, int], opts: BalanceOptions,
                    harm_dimensions: Iterable[str] = ()) -> dict[Stratum, int]:
    """Targets for every stratum that has rows or is owed rows (by a minimum or a language ratio)."""
    by_kind: Counter[str] = Counter()
    by_kind_dim: Counter[tuple[str, str]] = Counter()
    by_lang: Counter[str] = Counter()
    for (kind, dim, lang), n in available.items():
        by_kind[kind] += n
        by_kind_dim[kind, dim] += n
        by_lang[lang] += n
    ratios = kind_ratios(opts, by_kind)
    total = opts.total if opts.total is not None else default_total(ratios, by_kind)
    kind_targets = apportion(total, ratios)

    cell: dict[tuple[str, str], int] = {}
    for kind in KINDS:
        dims = {d: n ** (1.0 / opts.temperature) for (k, d), n in by_kind_dim.items() if k == kind and n > 0}
        cell.update({(kind, d): t for d, t in apportion(kind_targets.get(kind, 0), dims).items()})

    harm_ratio = {k: ratios.get(k, 0.0) for k in HARM_KINDS}
    if not any(harm_ratio.values()):
        harm_ratio = {"refusal": 1.0}
    dimensions = {d for _, d in cell} | set(harm_dimensions) | set(opts.dimensions)
    for dim in sorted(dimensions - {GENERAL_DIMENSION}):
        low, high = opts.bounds(dim)
        parts = {k: cell.get((k, dim), 0) for k in KINDS if (k, dim) in cell}
        now = sum(parts.values())
        wanted = max(low, now if high is None else min(now, high))
        if wanted != now:
            weights = parts if now > 0 else harm_ratio
            for kind, t in apportion(wanted, weights).items():
                cell[kind, dim] = t

    targets: dict[Stratum, int] = {}
    for (kind, dim), t in cell.items():
        own = {lang: float(n) for (k, d, lang), n in available.items() if k == kind and d == dim and n > 0}
        weights = dict(opts.languages) or own or {lang: float(n) for lang, n in by_lang.items()}
        for lang, n in apportion(t, weights).items():
            targets[kind, dim, lang] = n
    for stratum in available:
        targets.setdefault(stratum, 0)
    return targets
