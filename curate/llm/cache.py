"""Content-addressed response cache in sqlite: a re-run or a resumed run pays for no request twice.

The key is a hash of (model, request params, messages). Only complete answers that parsed are stored, so
a truncated or malformed answer is asked again next time. WAL mode lets readers and one writer share the
file, and each answer is committed on arrival: a killed run keeps everything it had received.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any


def cache_key(model: str, params: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    blob = json.dumps({"model": model, "params": params, "messages": messages},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


BUSY_SECONDS = 10.0  # how long a statement waits for another process's lock on the file


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the file to WAL (it stays so). Processes opening a new cache at once (Dask workers) race for the
    switch, and sqlite answers "database is locked" at once rather than waiting in its busy handler: retry."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class ResponseCache:
    def __init__(self, path: Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One connection used from the event loop thread only; statements take microseconds.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_SECONDS)
        _use_wal(self._db)
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process; fsync at checkpoints
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
            "value TEXT NOT NULL, created REAL NOT NULL)")

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except json.JSONDecodeError:
            return None  # a damaged entry is simply asked again

    def put(self, key: str, model: str, value: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO responses (key, model, value, created) VALUES (?, ?, ?, ?)",
                         (key, model, json.dumps(value, ensure_ascii=False), time.time()))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
