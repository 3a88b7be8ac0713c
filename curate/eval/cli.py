"""`curate eval` and `curate eval compare`: registered in curate/cli.py with one line."""
from __future__ import annotations

import json
from pathlib import Path

import click

from curate.cli import UserError, _handle_errors, options_from_model, parse_options
from curate.eval.options import EvalOptions


def _eval_callback(ctx: click.Context, **given) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from curate.eval.render import print_summary
    from curate.eval.run import run_eval

    opts = parse_options(EvalOptions, given, Path.cwd())
    try:
        result = run_eval(opts, log=lambda m: click.echo(m, err=True))
    except ValueError as exc:  # no endpoint / model, a bad classifier model
        raise UserError(str(exc)) from None
    print_summary(result.summary)
    click.echo(f"wrote {opts.out}/items.parquet and {opts.out}/summary.json", err=True)


eval_group = click.Group(
    "eval", callback=click.pass_context(_handle_errors(_eval_callback)), invoke_without_command=True,
    params=options_from_model(EvalOptions, set()),
    help="Evaluate a model on a suite: defence rate per harm dimension and language (plain and jailbreak-wrapped), "
         "over-refusal on benign look-alikes, general accuracy, each with a 95% Wilson interval. Writes "
         "OUT/items.parquet and OUT/summary.json (docs/eval.md). `curate eval compare A B` compares two results.")


@eval_group.command("compare")
@click.argument("a_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("b_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Significance level of the McNemar test.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the comparison as JSON.")
@_handle_errors
def compare_command(a_dir: Path, b_dir: Path, alpha: float, out: Path | None) -> None:
    """B minus A per metric, dimension and language, with its 95% interval and McNemar's test on shared items."""
    from curate.eval.compare import compare
    from curate.eval.render import print_comparison
    from curate.store import write_json

    result = compare(a_dir, b_dir, alpha)
    print_comparison(result)
    if out is not None:
        write_json(out, result)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(json.dumps(result["overall"], ensure_ascii=False, indent=1))


@eval_group.command("card")
@click.argument("export_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("result_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True, path_type=Path))
@_handle_errors
def card_command(export_dir: Path, result_dirs: tuple[Path, ...]) -> None:
    """Add eval results (headline table and per-dimension chart) to a curate export's dataset card.
    Running it again replaces the section."""
    from curate.eval.card import add_to_card

    click.echo(f"updated {add_to_card(export_dir, list(result_dirs))}", err=True)
