"""Export: a hub-style dataset folder (parquet splits, dataset card, plots, recipe), optionally pushed.

Rows with a ``drop_reason`` and rows still waiting for a response stay out (the card counts them).
The stage returns its input unchanged: the files are its output.
"""
from curate.export.options import ExportOptions
from curate.export.stage import run
from curate.stage import Stage

STAGE = Stage(
    name="export",
    Options=ExportOptions,
    run=run,
    reads=("id", "source", "source_id", "source_license", "lang", "prompt", "response", "reasoning", "categories",
           "prompt_harmful", "response_kind", "label_origin", "attack", "dup_cluster", "is_duplicate", "drop_reason",
           "split", "role", "answer_origin", "answer_model", "answer_template", "answer_judge_score",
           "synthesis_status", "reviewed", "meta"),
    sink=True,
    help="Write a Hugging Face dataset folder (data/<split>-*.parquet, README.md card, plots) and optionally push it.",
)

__all__ = ["STAGE", "ExportOptions", "run"]
