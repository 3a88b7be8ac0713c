"""The `curate` command line: parses flags, calls the library, prints. The command groups live in
curate/commands/ (one module each); this file holds the top-level group, `run`, `presets` and `report`.

Every stage's options come from its pydantic ``Options`` model, so the YAML keys and the CLI flags
are one definition (``threshold`` in YAML is ``--threshold`` here).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from curate import __version__
from curate.commands import classifier, review, stages, taxonomy
from curate.commands.common import LazyGroup, UserError, handle_errors, log
from curate.engine.cli import engine_options, settings_from_flags
from curate.errors import EXIT_FAILED


def _llm_group() -> click.Group:
    from curate.commands.llm import llm_group

    return llm_group


def _eval_group() -> click.Group:
    from curate.commands.eval import eval_group

    return eval_group()


@click.group(cls=LazyGroup, lazy={**stages.lazy_commands(), "llm": _llm_group, "eval": _eval_group},
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="curate")
def main() -> None:
    """curate: build bilingual (zh/en) safety training corpora for reasoning LLMs.

    Stages: collect -> dedup -> classify -> synthesize -> review -> balance -> export.
    Run them all from a YAML recipe with `curate run`, or one at a time on files with
    `curate <stage> --in PATH --out PATH`.
    """


@main.command("run")
@click.argument("pipeline", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: run_dir from the YAML, else ./runs/<name>).")
@click.option("--from", "from_stage", metavar="STAGE", help="Re-run from this stage on (earlier stages are reused).")
@click.option("--to", "to_stage", metavar="STAGE", help="Stop after this stage.")
@click.option("--force", is_flag=True, help="Re-run every stage even if its config and input did not change.")
@engine_options
@handle_errors
def run_command(pipeline: Path, run_dir: Path | None, from_stage: str | None, to_stage: str | None, force: bool,
                **engine_flags) -> None:
    """Run a pipeline YAML. Finished stages whose config and input did not change are skipped;
    a changed stage re-runs with everything after it. Ends with the funnel: every collected record is
    exported, pending, or dropped with a reason."""
    from curate import funnel
    from curate.config import load_pipeline
    from curate.pipeline import run_pipeline

    engine = settings_from_flags(load_pipeline(pipeline)[0].engine_settings(), **engine_flags)
    result = run_pipeline(pipeline, run_dir=run_dir, from_stage=from_stage, to_stage=to_stage, force=force,
                          log=log, engine=engine)
    funnel.render(result.funnel, title=f"Funnel of {result.run_dir}")
    if not result.funnel.balanced:
        raise UserError("funnel totals do not add up: some records are unaccounted for", EXIT_FAILED)


@main.command("presets")
def presets_command() -> None:
    """List the built-in dataset presets: files, label set, licence."""
    from rich.console import Console
    from rich.table import Table

    from curate.collect.presets import PRESETS

    table = Table(title="collect presets")
    for col in ("preset", "dataset", "files", "label set", "licence", "role"):
        table.add_column(col)
    for p in PRESETS.values():
        table.add_row(p.name, p.description, ", ".join(p.files), p.label_set or "-", p.license, p.role)
    Console().print(table)


@main.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (default RUN_DIR/report.html); the Markdown twin goes beside it.")
@handle_errors
def report_command(run_dir: Path, out: Path | None) -> None:
    """Write a self-contained HTML report of a run (and a Markdown version): funnel, dimensions x
    languages, balancing, lengths, duplicates, classifier confidence, synthesis, review, sample rows."""
    from curate.report import write_report

    try:
        path = write_report(run_dir, out)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"report: {path} (and {path.with_suffix('.md')})")


for group in (taxonomy.taxonomy_group, classifier.classifier_group, review.review_group):
    main.add_command(group)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
