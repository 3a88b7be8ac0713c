"""`curate taxonomy validate|show`."""
from __future__ import annotations

from pathlib import Path

import click

from curate.commands.common import UserError, handle_errors, with_taxonomy
from curate.errors import EXIT_FAILED


@click.group("taxonomy")
def taxonomy_group() -> None:
    """The harm taxonomy: dimensions (zh/en names, definitions, response policies) and label mappings."""


@taxonomy_group.command("validate")
@with_taxonomy("path")
def taxonomy_validate(path: Path | None) -> None:
    """Check that every mapped label points at an existing dimension, every dimension has zh and en
    text, and every refinement rule compiles. Exit 1 with the list of problems."""
    from curate.taxonomy import Taxonomy, validate_taxonomy

    problems = validate_taxonomy(path)
    if problems:
        for problem in problems:
            click.secho(f"- {problem}", fg="red", err=True)
        raise UserError(f"{len(problems)} problem(s) in the taxonomy", EXIT_FAILED)
    taxonomy = Taxonomy.load(path)
    click.echo(f"taxonomy ok: {len(taxonomy.harm_ids)} dimensions, {len(taxonomy.label_sets())} label mappings")


@taxonomy_group.command("show")
@with_taxonomy("path")
@handle_errors
def taxonomy_show(path: Path | None) -> None:
    """List the dimensions with their English and Chinese names and response mode."""
    from rich.console import Console
    from rich.table import Table

    from curate.taxonomy import Taxonomy

    taxonomy = Taxonomy.load(path)
    table = Table(title="harm dimensions")
    for col in ("id", "key", "English", "中文", "response"):
        table.add_column(col)
    for dim in [taxonomy.safe, *taxonomy.dimensions]:
        table.add_row(dim.id, dim.key, dim.name_en, dim.name_zh, getattr(dim, "response_mode", ""))
    Console().print(table)
