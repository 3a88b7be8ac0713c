"""Achieved vs target per stratum: a rich table for people, a CSV and stats for the next synthesis round."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

COLUMNS = ("kind", "dimension", "lang", "available", "target", "achieved", "shortfall")


def render_table(rows: list[dict[str, Any]], width: int = 100) -> str:
    table = Table(title="balance: achieved vs target per stratum")
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("available", "target", "achieved", "shortfall") else "left")
    for row in rows:
        short = row["shortfall"]
        table.add_row(*(str(row[c]) for c in COLUMNS[:-1]), f"[red]{short}[/red]" if short else "0")
    total = {c: sum(r[c] for r in rows) for c in COLUMNS[3:]}
    table.caption = (f"{total['achieved']:,} of {total['target']:,} target rows selected; "
                     f"{total['shortfall']:,} missing")
    buffer = io.StringIO()
    Console(file=buffer, width=width, force_terminal=False, color_system=None).print(table)
    return buffer.getvalue()


def shortfall_lines(rows: list[dict[str, Any]]) -> list[str]:
    return [f"needs {r['shortfall']:,} more {r['kind']} rows in {r['dimension']} ({r['lang']})"
            for r in rows if r["shortfall"] > 0]


def write_shortfall_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Only the unmet targets: one line per stratum that needs more rows."""
    from curate.store import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(r for r in rows if r["shortfall"] > 0)
    return path
