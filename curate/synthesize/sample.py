"""Which rows a budgeted synthesis run sends: a stratified sample over language x goal x dimension.

A 1.5B model on 2 cores writes a few answers a minute, so with the embedded model a run synthesizes a
sample and leaves the rest pending (a later run with a larger ``sample`` continues; answered requests
come from the cache). The order interleaves languages first, then goals, then dimensions, then rows by
id hash, so any prefix of it is as balanced as it can be and the same input gives the same sample.
"""
from __future__ import annotations

import hashlib
from itertools import chain, zip_longest
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def _hashed(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def interleave(items: Sequence[T], keys: Sequence[Callable[[T], str]], ident: Callable[[T], str],
               path: str = "") -> list[T]:
    """Round-robin over the groups of ``keys[0]``, each group interleaved by the remaining keys.

    Groups are visited in an order hashed with their parents' keys, so English and Chinese do not both start
    with the same dimension (a small sample then covers more dimensions)."""
    if not keys:
        return sorted(items, key=lambda item: _hashed(ident(item)))
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(keys[0](item), []).append(item)
    ordered = [interleave(groups[k], keys[1:], ident, f"{path}/{k}")
               for k in sorted(groups, key=lambda k: _hashed(f"{path}/{k}"))]
    return [item for item in chain.from_iterable(zip_longest(*ordered)) if item is not None]


def stratified(items: Sequence[T], size: int | None, keys: Sequence[Callable[[T], str]],
               ident: Callable[[T], str]) -> tuple[list[T], list[T]]:
    """(sample, rest): the first ``size`` items of the interleaved order (``None`` or 0: all)."""
    if not size or size >= len(items):
        return list(items), []
    order = interleave(items, keys, ident)
    return order[:size], order[size:]
