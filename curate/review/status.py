"""Where a review project stands: done and pending tasks per stratum, and agreement so far."""
from __future__ import annotations

from typing import Any

from curate.review.client import Client, ReviewError
from curate.review.merge import agreement_report
from curate.review.pull import _annotation
from curate.review.push import find_project


def project_status(client: Client, title: str, harm_ids: list[str]) -> dict[str, Any]:
    project = find_project(client, title)
    if project is None:
        raise ReviewError(f"no Label Studio project named {title!r} at {client.url} (push creates it)")
    strata: dict[str, dict[str, int]] = {}
    annotated: list[list[dict[str, Any]]] = []
    annotators: set[Any] = set()
    total = done = annotations = 0
    for t in client.iterate(lambda: client.ls.tasks.list(project=project.id, fields="all", page_size=200)):
        total += 1
        anns = [_annotation(a) for a in (t.annotations or [])]
        submitted = [a for a in anns if not a["was_cancelled"]]
        annotations += len(submitted)
        annotators.update(a["completed_by"] for a in submitted)
        # is_labeled follows the project's overlap (maximum_annotations)
        finished = bool(getattr(t, "is_labeled", False)) or len(submitted) >= (project.maximum_annotations or 1)
        done += finished
        s = strata.setdefault(str((t.data or {}).get("stratum") or "unknown"), {"done": 0, "pending": 0})
        s["done" if finished else "pending"] += 1
        if submitted:
            annotated.append(submitted)
    return {"project": title, "project_id": project.id, "url": f"{client.url}/projects/{project.id}",
            "overlap": project.maximum_annotations, "tasks": total, "done": done, "pending": total - done,
            "annotations": annotations, "annotators": len(annotators), "strata": dict(sorted(strata.items())),
            "agreement": agreement_report(annotated, harm_ids)}
