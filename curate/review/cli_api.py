"""Plain functions behind `curate review push|pull|status` (the CLI only parses flags and prints); the work is
the review session's, as in the review stage."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from curate.io import read_records, write_records
from curate.review.pull import state_path
from curate.review.session import ReviewSession


def push(in_path: str | Path, project: str, sample: int | None = 200, strategy: str = "stratified", *,
         seed: int = 0, overlap: int = 1, batch_size: int = 100, taxonomy_path: str | Path | None = None,
         reviewer_lang: str = "en", url: str | None = None, api_key: str | None = None,
         log: Callable[[str], None] = print) -> dict[str, Any]:
    """Create or update the project and import the sample's missing tasks; returns the push figures.
    ``reviewer_lang`` (en or zh) comes first in the guidelines page."""
    session = ReviewSession.open(url, api_key, taxonomy_path)  # a down server or a bad key changes nothing
    return session.push(read_records(in_path), project, sample=sample, strategy=strategy, seed=seed, overlap=overlap,
                        batch_size=batch_size, reviewer_lang=reviewer_lang, log=log)


def pull(in_path: str | Path, project: str, out_path: str | Path, conflict: str = "majority", *,
         state_dir: str | Path | None = None, taxonomy_path: str | Path | None = None, url: str | None = None,
         api_key: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fetch new annotations (incrementally; the state lives in ``state_dir``, default ``<out dir>/.curate-review``),
    merge them into the records of ``in_path`` and write ``out_path``; returns pull + merge figures."""
    session = ReviewSession.open(url, api_key, taxonomy_path)
    df = read_records(in_path)
    work_dir = Path(state_dir) if state_dir else Path(out_path).resolve().parent / ".curate-review"
    out, pulled, merged = session.pull_merge(df, project, state_path(work_dir, project), conflict)
    write_records(out, out_path)
    log(f"review: {pulled['annotations_new']} new annotations; merged {merged['reviewed']} records "
        f"({merged['edited']} edited, {merged['rejected']} rejected, {merged['needs_adjudication']} need adjudication)"
        f" -> {out_path}")
    return {"pull": pulled, "merge": merged, "out": str(out_path)}


def status(project: str, *, taxonomy_path: str | Path | None = None, url: str | None = None,
           api_key: str | None = None) -> dict[str, Any]:
    """Done / pending per stratum and agreement so far, straight from the server."""
    return ReviewSession.open(url, api_key, taxonomy_path).status(project)
