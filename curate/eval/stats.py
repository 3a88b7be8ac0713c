"""Intervals and tests for rates: Wilson score intervals, Newcombe's difference interval, exact McNemar.

Small evals are the normal case (a few dozen prompts per dimension and language), so every rate carries
its 95% interval and its n, and a cell with fewer than ``SMALL_N`` items says so instead of looking precise.
"""
from __future__ import annotations

import math

Z95 = 1.959963984540054
SMALL_N = 30


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for successes/n (Wilson 1927); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at 0 or n successes the bound is exactly 0 or 1 (rounding would leave 1e-17)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def rate(successes: int, n: int, small_n: int = SMALL_N) -> dict | None:
    """``{rate, low, high, n, small}``; None when there are no items (the metric does not apply)."""
    if n <= 0:
        return None
    low, high = wilson(successes, n)
    return {"rate": successes / n, "low": low, "high": high, "n": n, "successes": successes, "small": n < small_n}


def difference(a: dict, b: dict) -> tuple[float, float, float]:
    """B minus A with Newcombe's hybrid score interval built from the two Wilson intervals (method 10).

    It treats the samples as independent, which is conservative for paired items (the usual positive
    correlation narrows the true interval); the paired test is McNemar's below.
    """
    d = b["rate"] - a["rate"]
    low = d - math.sqrt((b["rate"] - b["low"]) ** 2 + (a["high"] - a["rate"]) ** 2)
    high = d + math.sqrt((b["high"] - b["rate"]) ** 2 + (a["rate"] - a["low"]) ** 2)
    return d, max(-1.0, low), min(1.0, high)


def mcnemar(only_a: int, only_b: int) -> float:
    """Exact McNemar p-value (two-sided binomial test on the discordant pairs); 1.0 with no discordant pair."""
    from scipy import stats  # imported here: scipy takes a moment to load and only compare needs it

    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(only_a, discordant, 0.5).pvalue)
