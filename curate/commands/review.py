"""`curate review push|pull|status` (LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY from the environment)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from curate.commands.common import UserError, handle_errors, with_taxonomy


@click.group("review")
def review_group() -> None:
    """Human review in Label Studio (LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY from the environment)."""


@review_group.command("push")
@click.option("--in", "in_path", required=True, type=click.Path(exists=True, path_type=Path), help="Records to sample from.")
@click.option("--project", required=True, help="Label Studio project title (created if missing, reused if present).")
@click.option("--sample", type=int, default=200, show_default=True, help="Records to send (0 or negative: all).")
@click.option("--strategy", type=click.Choice(["stratified", "uncertain", "disagreement", "all"]), default="stratified",
              show_default=True, help="stratified by dimension x language; uncertain = low classifier confidence "
              "first; disagreement = source vs classifier first; all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option("--overlap", type=int, default=1, show_default=True, help="Annotators per task (2+ measures agreement).")
@click.option("--batch-size", type=int, default=100, show_default=True, help="Tasks per import request.")
@click.option("--reviewer-lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="The reviewers' language: its guidelines come first on the Instructions page.")
@with_taxonomy()
@handle_errors
def review_push(in_path, project, sample, strategy, seed, overlap, batch_size, reviewer_lang, taxonomy) -> None:
    """Create or update the project and import the sample as tasks with pre-annotations. Idempotent: a
    second push imports only tasks that are missing (tasks carry the record id)."""
    from curate.review.cli_api import push

    push(in_path, project, sample if sample and sample > 0 else None, strategy, seed=seed, overlap=overlap,
         batch_size=batch_size, taxonomy_path=taxonomy, reviewer_lang=reviewer_lang, log=click.echo)


@review_group.command("pull")
@click.option("--in", "in_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="The records that were pushed.")
@click.option("--project", required=True, help="Label Studio project title.")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="Merged records to write.")
@click.option("--conflict", type=click.Choice(["majority", "adjudicate"]), default="majority", show_default=True,
              help="Several annotators disagree: majority vote, or flag for adjudication (no override).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the incremental pull state lives (default: .curate-review beside --out).")
@with_taxonomy()
@handle_errors
def review_pull(in_path, project, out_path, conflict, state_dir, taxonomy) -> None:
    """Fetch new annotations and merge them: human dimensions override (label_origin=human), edited
    answers replace the old (kept in meta), rejected rows get drop_reason rejected_in_review."""
    from curate.review.cli_api import pull

    pull(in_path, project, out_path, conflict, state_dir=state_dir, taxonomy_path=taxonomy, log=click.echo)


@review_group.command("status")
@click.option("--project", required=True, help="Label Studio project title.")
@with_taxonomy()
@handle_errors
def review_status(project, taxonomy) -> None:
    """Done and pending tasks per stratum (dimension x language) and agreement so far."""
    from curate.review.cli_api import status

    result = status(project, taxonomy_path=taxonomy)
    click.echo(json.dumps(result, ensure_ascii=False, indent=1, default=str))


@review_group.command("label-config")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the XML here (a new file) instead of printing it.")
@with_taxonomy()
@handle_errors
def review_label_config(out_path, taxonomy) -> None:
    """The Label Studio labeling config (XML) for the taxonomy: what `review push` gives new projects."""
    from curate.review.label_config import label_config
    from curate.taxonomy import Taxonomy

    xml = label_config(Taxonomy.load(taxonomy))
    if out_path is None:
        click.echo(xml, nl=False)
        return
    if out_path.exists():  # curate never overwrites a file it did not write
        raise UserError(f"{out_path}: exists; give a new file")
    out_path.write_text(xml, encoding="utf-8")
    click.echo(f"label config: {out_path}", err=True)
