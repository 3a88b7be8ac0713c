"""Push a sample of records into a Label Studio project, idempotently.

The project is found by its title (created once); tasks carry ``data.record_id``. Every push first lists the
record ids already in the project and imports only the missing ones, in batches: a push cut short (server
stopped, network gone) is finished by running it again, without duplicates. Imports are not retried inside a
run: a request that reached the server but whose answer was lost is found by the next run's listing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import polars as pl

from curate.review import label_config as lc
from curate.review.client import Client, ReviewError
from curate.review.guidelines import instructions_html
from curate.review.sampling import select
from curate.review.tasks import model_version, task
from curate.taxonomy import Taxonomy


def find_project(client: Client, title: str) -> Any | None:
    """The project with exactly this title (the oldest one if people made several by hand)."""
    found = [p for p in client.iterate(lambda: client.ls.projects.list(title=title, page_size=100)) if p.title == title]
    return min(found, key=lambda p: p.id) if found else None


QUEUE_VIEW = "Review queue (hardest first)"
# columns a reviewer does not need in the data manager: rendered HTML, the link key, full texts shown in the task
_HIDDEN_COLUMNS = [f"tasks:data.{key}" for key in ("context_html", "reasoning_html", "response_html", "record_id",
                                                   "shape", "reasoning", "response")] + \
                  ["tasks:inner_id", "tasks:annotations_results", "tasks:annotations_ids", "tasks:predictions_results"]


def ensure_queue_view(client: Client, project_id: int) -> bool:
    """A data-manager tab ordered by priority (classifier uncertainty, highest first) without the internal
    columns; "Label All Tasks" in it follows that order. Created once; True when it was created now."""
    views = client.call(lambda: client.ls.views.list(project=project_id))
    if any((v.data or {}).get("title") == QUEUE_VIEW for v in views):
        return False
    hidden = {"explore": _HIDDEN_COLUMNS, "labeling": _HIDDEN_COLUMNS}
    client.call(lambda: client.ls.views.create(project=project_id, data={
        "title": QUEUE_VIEW, "ordering": ["-tasks:data.priority"], "hiddenColumns": hidden}))
    return True


def ensure_project(client: Client, title: str, taxonomy: Taxonomy, *, overlap: int = 1,
                   version: str | None = None, reviewer_lang: str = "en") -> tuple[Any, bool]:
    """(project, created). An existing project gets its guidelines page rendered again and, when curate
    generated its labeling config, the current config (a config written by hand is left alone)."""
    if len(title) < 3:
        raise ReviewError(f"project name {title!r} is too short: Label Studio needs at least 3 characters")
    instructions = instructions_html(reviewer_lang, taxonomy)
    project = find_project(client, title)
    if project is not None:
        changes: dict[str, Any] = {}
        if overlap and project.maximum_annotations != overlap:
            changes["maximum_annotations"] = overlap
        if project.expert_instruction != instructions:
            changes["expert_instruction"] = instructions
        config = lc.label_config(taxonomy)
        current = (project.label_config or "").strip()  # Label Studio does not store it byte for byte
        if lc.GENERATED_MARK in current and current != config.strip():
            # a config curate generated earlier: the new one keeps every control name, so annotations still fit
            changes["label_config"] = config
        if changes:
            project = client.call(lambda: client.ls.projects.update(id=project.id, **changes))
        return project, False  # a new model version is set after the import (see push)
    project = client.call(lambda: client.ls.projects.create(
        title=title, label_config=lc.label_config(taxonomy),
        description="Safety corpus review prepared by curate (see annotations/GUIDELINES.*.md).",
        expert_instruction=instructions, show_instruction=True, maximum_annotations=overlap,
        model_version=version or "", show_collab_predictions=True, show_skip_button=True,
    ))
    return project, True


def existing_record_ids(client: Client, project_id: int) -> dict[str, int]:
    """record id -> task id for every task already in the project."""
    out: dict[str, int] = {}
    for t in client.iterate(lambda: client.ls.tasks.list(project=project_id, page_size=500, include="id,data")):
        rid = (t.data or {}).get("record_id")
        if rid is not None:
            out.setdefault(str(rid), t.id)
    return out


def push(client: Client, df: pl.DataFrame, title: str, *, taxonomy: Taxonomy, sample: int | None = 200,
         strategy: str = "stratified", seed: int = 0, overlap: int = 1, batch_size: int = 100,
         reviewer_lang: str = "en", on_batch: Callable[[int, int], None] | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Import the sample's missing tasks; returns figures (sampled, already present, imported, per stratum)."""
    chosen = select(df, sample, strategy, seed)
    rows = chosen.to_dicts()
    version = model_version(rows)
    project, created = ensure_project(client, title, taxonomy, overlap=overlap, version=version,
                                      reviewer_lang=reviewer_lang)
    ensure_queue_view(client, project.id)
    present = existing_record_ids(client, project.id)
    todo = [r for r in rows if r["id"] not in present]
    imported = 0
    for start in range(0, len(todo), batch_size):
        batch = [task(r, r["_stratum"], r["_priority"], version, taxonomy) for r in todo[start:start + batch_size]]
        client.call(lambda: client.ls.projects.import_tasks(id=project.id, request=batch, return_task_ids=True))
        imported += len(batch)
        if on_batch is not None:
            on_batch(imported, len(todo))
    if not created and version and project.model_version != version and imported:
        # Label Studio accepts a model version only once predictions carry it, so after the import
        client.call(lambda: client.ls.projects.update(id=project.id, model_version=version))
    strata: dict[str, int] = {}
    for r in rows:
        strata[r["_stratum"]] = strata.get(r["_stratum"], 0) + 1
    stats = {"project": title, "project_id": project.id, "project_created": created, "strategy": strategy,
             "sampled": len(rows), "already_present": len(rows) - len(todo), "imported": imported,
             "model_version": version, "strata": dict(sorted(strata.items())), "url": f"{client.url}/projects/{project.id}"}
    log(f"review: {imported} tasks imported into {title!r} ({stats['already_present']} already there), "
        f"{stats['url']}")
    return stats


def default_title(run_dir: Path | None) -> str:
    return f"curate {run_dir.name}" if run_dir is not None else "curate review"
