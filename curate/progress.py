"""Progress display: a rich bar (rate, ETA) on a terminal, plain log lines elsewhere."""
from __future__ import annotations

import sys
import threading
import time


def format_rate(per_second: float | None, unit: str = "row") -> str:
    """Units per second, or seconds per unit when they are slow (an LLM on a laptop: "19.3 s/row", not "0/s")."""
    if not per_second:
        return ""
    return f"{per_second:,.0f} {unit}s/s" if per_second >= 1 else f"{1 / per_second:,.1f} s/{unit}"


def _rate_column(unit: str):
    """A rich column showing units/s (rich's own speed column speaks bytes)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(format_rate(task.speed, unit))

    return RateColumn()


class Progress:
    """``with ctx.progress(total, "hashing") as bar: bar.advance(n)``."""

    def __init__(self, total: int | None, description: str = "", *, log_every_s: float = 10.0, unit: str = "row"):
        self.total = total
        self.description = description
        self.unit = unit  # what one step is: "row", "answer" (candidates of rows), "step" (a build)
        self.done = 0
        self._interactive = sys.stderr.isatty()
        self._log_every = log_every_s
        self._last_log = 0.0
        self._rich = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> "Progress":
        self._start = self._last_log = self._last_advance = time.monotonic()
        if self._interactive:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)

            self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      _rate_column(self.unit), TimeElapsedColumn(), TimeRemainingColumn(), transient=True)
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total)
        else:  # a log has no live clock: say that we are waiting, so a slow endpoint does not look like a hang
            self._heartbeat = threading.Thread(target=self._beat, name="curate-progress", daemon=True)
            self._heartbeat.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self._log_every):
            idle = time.monotonic() - self._last_advance
            if idle >= self._log_every:
                total = f"/{self.total}" if self.total else ""
                print(f"[{self.description}] {self.done}{total}, waiting ({idle:.0f}s since the last one finished)",
                      file=sys.stderr, flush=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._last_advance = time.monotonic()
        if self._rich is not None:
            self._rich.update(self._task, advance=n)
            return
        now = time.monotonic()
        if now - self._last_log >= self._log_every:
            self._last_log = now
            rate = self.done / max(now - self._start, 1e-9)
            total = f"/{self.total}" if self.total else ""
            print(f"[{self.description}] {self.done}{total} ({format_rate(rate, self.unit)})", file=sys.stderr,
                  flush=True)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        if self._rich is not None:
            self._rich.stop()
