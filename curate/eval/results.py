"""The eval result folder, in one place: what is in it, how it is written, how it is read back.

    <out>/items.parquet    one row per suite item (prompt, answer, reasoning, verdict, who judged it, ...)
    <out>/summary.json     the machine-readable contract (docs/eval.md)
    <out>/cache/llm.sqlite answers already paid for: a re-run or a resumed run does not ask again

curate only writes into a folder that is new, empty or an earlier eval result (never over a user's files).
"""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from curate.config import ConfigError
from curate.store import atomic_path, write_json

ITEMS = "items.parquet"
SUMMARY = "summary.json"
CACHE = "cache"
OURS = {ITEMS, SUMMARY, CACHE}


class ResultError(ConfigError):
    """A result folder cannot be written or read; the message says which and why."""


def prepare(out: Path) -> Path:
    """Create ``out`` (or accept an earlier result); refuse a folder holding files curate did not write."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ResultError(f"{out}: exists and is not a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OURS and not p.name.startswith(".tmp-"))
        if foreign:
            raise ResultError(f"{out}: holds files curate did not write ({foreign[0]}, ...); choose an empty or "
                              "new folder")
    (out / CACHE).mkdir(parents=True, exist_ok=True)
    return out


def cache_path(out: Path) -> Path:
    return Path(out) / CACHE / "llm.sqlite"


def write(out: Path, items: pl.DataFrame, summary: dict) -> None:
    with atomic_path(Path(out) / ITEMS) as tmp:
        items.write_parquet(tmp)
    write_json(Path(out) / SUMMARY, summary)


def load(folder: Path) -> tuple[dict, pl.DataFrame]:
    folder = Path(folder)
    if not (folder / SUMMARY).is_file() or not (folder / ITEMS).is_file():
        raise ResultError(f"{folder}: not an eval result (no {SUMMARY} and {ITEMS}); run `curate eval` first")
    try:
        return json.loads((folder / SUMMARY).read_text(encoding="utf-8")), pl.read_parquet(folder / ITEMS)
    except (json.JSONDecodeError, OSError, pl.exceptions.PolarsError) as exc:
        raise ResultError(f"{folder}: cannot read the eval result: {exc}") from None
