"""The funnel: where every record that entered a run ended up. One place for the arithmetic."""
from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from curate.records import ANSWERED_FACT, has_answer

PENDING = "pending (kept, no response yet)"


@dataclass
class Funnel:
    collected: int
    quarantined: int
    kept: int  # no drop_reason and a response: what export writes
    pending: int  # no drop_reason, no response (synthesis not run or skipped)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def accounted(self) -> int:
        return self.kept + self.pending + sum(self.dropped.values())

    @property
    def balanced(self) -> bool:
        return self.accounted == self.collected

    def rows(self) -> list[tuple[str, int]]:
        out = [("collected records", self.collected)]
        out += [(f"dropped: {reason}", n) for reason, n in sorted(self.dropped.items(), key=lambda kv: -kv[1])]
        out += [(PENDING, self.pending), ("kept (exportable)", self.kept)]
        return out


FACTS = [pl.col("drop_reason"), ANSWERED_FACT]  # what the funnel keeps of a run's records (store.read_shards_derived)


def drop_counts(df: pl.DataFrame) -> dict[str, int]:
    counts = df.filter(pl.col("drop_reason").is_not_null()).group_by("drop_reason").len()
    return {row["drop_reason"]: int(row["len"]) for row in counts.iter_rows(named=True)}


def compute(df: pl.DataFrame, *, quarantined: int = 0, collected: int | None = None) -> Funnel:
    live = df.filter(pl.col("drop_reason").is_null())
    kept = live.filter(has_answer(df)).height
    return Funnel(collected=df.height if collected is None else collected, quarantined=quarantined,
                  kept=kept, pending=live.height - kept, dropped=drop_counts(df))


def render(funnel: Funnel, title: str = "Funnel") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("where")
    table.add_column("rows", justify="right")
    for name, n in funnel.rows():
        table.add_row(name, f"{n:,}")
    status = "totals add up" if funnel.balanced else f"MISMATCH: {funnel.accounted:,} accounted"
    table.caption = f"{funnel.accounted:,} of {funnel.collected:,} records accounted for ({status}); " \
                    f"{funnel.quarantined:,} input lines quarantined"
    Console(stderr=False).print(table)
