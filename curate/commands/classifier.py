"""`curate classifier train|eval`: train flags derived from TrainConfig."""
from __future__ import annotations

import json
from pathlib import Path

import click

from curate.commands.common import LazyGroup, handle_errors, taxonomy_option


@click.group("classifier", cls=LazyGroup, lazy={"train": lambda: _classifier_train_command()})
def classifier_group() -> None:
    """Train and evaluate the harm-dimension classifier (fastText prompt model + response-kind model)."""


def _classifier_train_command() -> click.Command:
    from curate.classify.cli_api import train_flags

    @handle_errors
    def callback(in_paths, out, taxonomy, epoch, **config) -> None:
        """Train the prompt model (multi-label S00-S14) and the response-kind model on labelled records,
        calibrate per-dimension thresholds on held-out rows, and save the model folder."""
        from curate.classify.cli_api import train

        meta = train(list(in_paths), out, taxonomy=taxonomy, epoch=epoch, **config)
        click.echo(f"model saved to {out} ({(meta.get('training') or {}).get('train_rows', '?')} training rows)")

    params = [
        click.Option(["--in", "in_paths"], multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
                     help="Labelled records (e.g. the output of `curate collect`); repeatable."),
        click.Option(["--out"], required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Model folder to write (model files, thresholds, metadata)."),
        taxonomy_option(),
        click.Option(["--epoch"], type=int, help="fastText epochs of the prompt model (default: the tuned value)."),
        *train_flags(),
    ]
    return click.Command("train", callback=callback, params=params, help=callback.__doc__)




@classifier_group.command("eval")
@click.option("--in", "in_paths", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled records to score against; repeatable.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Model folder (default: the model shipped with curate).")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@handle_errors
def classifier_eval(in_paths, model_dir, as_json) -> None:
    """Per-dimension precision/recall/F1, macro-F1 and binary harmful-vs-safe F1, for zh and en separately."""
    from curate.classify.cli_api import evaluate, format_report

    result = evaluate(list(in_paths), model_dir)
    click.echo(json.dumps(result, ensure_ascii=False, indent=1, default=str) if as_json else format_report(result))
