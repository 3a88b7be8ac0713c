"""Fetch annotations incrementally and keep them in a state file in the run's work dir.

The state holds every task's current annotations (simplified) and a cursor: the newest task ``updated_at``
seen, but no later than the server's clock when the pull began. A pull asks only for tasks updated after the
cursor (minus a small overlap, for writes that commit out of order) and replaces those tasks' annotations,
so edited or deleted annotations are followed too. The merge always uses the whole state.
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from curate.review.client import Client
from curate.review.tasks import parse_result

OVERLAP = timedelta(seconds=5)


def state_path(work_dir: Path, title: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-") or "project"
    return Path(work_dir) / "review" / f"{slug}.json"


def load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"tasks": {}, "cursor": None, "project_id": None}
    except (OSError, json.JSONDecodeError):
        return {"tasks": {}, "cursor": None, "project_id": None}  # unreadable cache: fetch everything again
    return state if isinstance(state, dict) and "tasks" in state else {"tasks": {}, "cursor": None, "project_id": None}


def save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _ts(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _updated_after(cursor: datetime, overlap: timedelta) -> str:
    # Label Studio's data manager parses this exact format (an offset like +00:00 is a server error)
    value = (cursor - overlap).astimezone(timezone.utc)
    return json.dumps({"filters": {"conjunction": "and", "items": [{
        "filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime",
        "value": value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}]}})


_ANNOTATED = json.dumps({"filters": {"conjunction": "and", "items": [{
    "filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number", "value": 0}]}})


def _server_now(client: Client) -> datetime | None:
    """The server's clock (its Date header, whole seconds), so no client clock skew enters the cursor."""
    try:
        answer = httpx.get(client.url + "/health", timeout=10)
        return parsedate_to_datetime(answer.headers["date"])
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return None


def _annotation(a: Any) -> dict[str, Any]:
    get = a.get if isinstance(a, dict) else lambda k, d=None: getattr(a, k, d)
    completed_by = get("completed_by")
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    updated = get("updated_at")
    return {"id": get("id"), "completed_by": completed_by, "was_cancelled": bool(get("was_cancelled")),
            "updated_at": updated.isoformat() if isinstance(updated, datetime) else updated,
            "result": parse_result(get("result"))}


def pull(client: Client, project_id: int, path: Path,
         overlap: timedelta = OVERLAP) -> tuple[dict[str, Any], dict[str, Any]]:
    """Update the state at ``path`` from the server; returns (state, figures of this pull)."""
    started = _server_now(client)
    state = load_state(path)
    if state.get("project_id") != project_id:  # another project under the same title: start over
        state = {"tasks": {}, "cursor": None, "project_id": project_id}
    cursor = _ts(state.get("cursor"))
    query = _updated_after(cursor, overlap) if cursor else None
    fetched = new = changed = 0
    newest = cursor
    # the first pull needs only annotated tasks; later ones must also see tasks whose annotations were deleted
    where = {"query": query or _ANNOTATED}
    for t in client.iterate(lambda: client.ls.tasks.list(project=project_id, fields="all", page_size=200, **where)):
        fetched += 1
        key = str(t.id)
        anns = [_annotation(a) for a in (t.annotations or [])]
        old = {a["id"]: a["updated_at"] for a in state["tasks"].get(key, {}).get("annotations", [])}
        new += sum(a["id"] not in old for a in anns)
        changed += sum(a["id"] in old and old[a["id"]] != a["updated_at"] for a in anns)
        state["tasks"][key] = {"record_id": (t.data or {}).get("record_id"), "stratum": (t.data or {}).get("stratum"),
                               "annotations": anns}
        ts = _ts(t.updated_at)
        if ts is not None and (newest is None or ts > newest):
            newest = ts
    if newest is not None and started is not None:
        # a task updated while the pages were read may sit on a page already passed: start the next pull no
        # later than this one started (server clock, like updated_at), so it is fetched then
        newest = min(newest, started)
    state["cursor"] = newest.isoformat() if newest else None
    save_state(path, state)
    annotated = sum(1 for t in state["tasks"].values() if any(not a["was_cancelled"] for a in t["annotations"]))
    return state, {"tasks_fetched": fetched, "annotations_new": new, "annotations_changed": changed,
                   "tasks_annotated": annotated, "incremental": cursor is not None}
