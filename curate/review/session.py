"""One review session: a checked connection to Label Studio plus the taxonomy, and the three things both the
review stage and `curate review push|pull|status` do with it (push a sample, pull and merge finished reviews,
report progress). The stage and the CLI differ only in where the records and the pull state live."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import polars as pl

from curate.review.client import Client, ReviewError, connect
from curate.review.merge import merge
from curate.review.pull import pull
from curate.review.push import find_project, push
from curate.review.status import project_status
from curate.taxonomy import Taxonomy


class ReviewSession:
    def __init__(self, client: Client, taxonomy: Taxonomy):
        self.client = client
        self.taxonomy = taxonomy

    @classmethod
    def open(cls, url: str | None = None, api_key: str | None = None,
             taxonomy_path: str | Path | None = None) -> "ReviewSession":
        """Connect first: a down server or a refused key stops here, before anything is read or written."""
        client = connect(url, api_key)
        return cls(client, Taxonomy.load(taxonomy_path))

    def has_project(self, title: str) -> bool:
        return find_project(self.client, title) is not None

    def push(self, df: pl.DataFrame, title: str, *, log: Callable[[str], None] = print, **sampling: Any) -> dict[str, Any]:
        """Create or update the project and import the sample's missing tasks; the push figures."""
        return push(self.client, df, title, taxonomy=self.taxonomy, log=log, **sampling)

    def pull_merge(self, df: pl.DataFrame, title: str, state_file: Path,
                   conflict: str) -> tuple[pl.DataFrame, dict[str, Any], dict[str, Any]]:
        """New annotations since the state in ``state_file``, merged into ``df``: (records, pull figures, merge
        figures). A project that does not exist is a ReviewError."""
        project = find_project(self.client, title)
        if project is None:
            raise ReviewError(f"no Label Studio project named {title!r} at {self.client.url} (run `curate review push`)")
        state, pulled = pull(self.client, project.id, state_file)
        out, merged = merge(df, state, harm_ids=self.taxonomy.harm_ids, rule=conflict, project=title)
        return out, pulled, merged

    def status(self, title: str) -> dict[str, Any]:
        """Done / pending per stratum and agreement so far, straight from the server."""
        return project_status(self.client, title, self.taxonomy.harm_ids)
