"""`curate eval`, `curate eval compare` and `curate eval card`: built on first use (curate/cli.py's LazyGroup)."""
from __future__ import annotations

import json
from pathlib import Path

import click


def eval_group() -> click.Group:
    from curate.commands.common import UserError, handle_errors, log, options_from_model, parse_options
    from curate.eval.options import EvalOptions

    @click.pass_context
    @handle_errors
    def run(ctx: click.Context, **given) -> None:
        if ctx.invoked_subcommand is not None:
            return
        from curate.eval.render import print_summary
        from curate.eval.run import run_eval

        opts = parse_options(EvalOptions, given, Path.cwd())
        try:
            result = run_eval(opts, log=log)
        except ValueError as exc:  # no endpoint / model, a bad classifier model
            raise UserError(str(exc)) from None
        print_summary(result.summary)
        click.echo(f"wrote {opts.out}/items.parquet and {opts.out}/summary.json", err=True)

    group = click.Group(
        "eval", callback=run, invoke_without_command=True, params=options_from_model(EvalOptions, set()),
        help="Evaluate a model on a suite: defence rate per harm dimension and language (plain and "
             "jailbreak-wrapped), over-refusal on benign look-alikes, general accuracy, each with a 95% Wilson "
             "interval. Writes OUT/items.parquet and OUT/summary.json (docs/eval.md). `curate eval compare A B` "
             "compares two results; `curate eval card` adds results to a dataset card.")

    @group.command("compare")
    @click.argument("a_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
    @click.argument("b_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
    @click.option("--alpha", default=0.05, show_default=True,
                  type=click.FloatRange(0, 1, min_open=True, max_open=True),
                  help="Significance level of the McNemar test.")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the comparison as JSON.")
    @handle_errors
    def compare_command(a_dir: Path, b_dir: Path, alpha: float, out: Path | None) -> None:
        """B minus A per metric, dimension and language, with its 95% interval and McNemar's test on shared items."""
        from curate.eval.compare import compare
        from curate.eval.render import print_comparison
        from curate.store import write_json

        if out is not None and out.exists() and not _is_comparison(out):
            raise UserError(f"{out}: exists and is not an earlier `curate eval compare` output; choose a new file")
        result = compare(a_dir, b_dir, alpha)
        print_comparison(result)
        if out is not None:
            write_json(out, result)
            click.echo(f"wrote {out}", err=True)
        else:
            click.echo(json.dumps(result["overall"], ensure_ascii=False, indent=1))

    @group.command("card")
    @click.argument("export_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
    @click.argument("result_dirs", nargs=-1, required=True,
                    type=click.Path(file_okay=False, exists=True, path_type=Path))
    @handle_errors
    def card_command(export_dir: Path, result_dirs: tuple[Path, ...]) -> None:
        """Add eval results (headline table and per-dimension chart) to a curate export's dataset card.
        Running it again replaces the section."""
        from curate.eval.card import add_to_card

        click.echo(f"updated {add_to_card(export_dir, list(result_dirs))}", err=True)

    return group


def _is_comparison(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"a", "b", "overall", "cells"} <= data.keys()
