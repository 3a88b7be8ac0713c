"""collect: read sources (files, HF datasets, presets), map labels to the taxonomy, normalise, detect language.

Every raw row becomes a record or a quarantined line with its file, line and reason.
"""
from curate.collect.options import CollectOptions
from curate.collect.stage import batches, check_unique_names, run
from curate.stage import Stage


def per_source(options: CollectOptions) -> list[CollectOptions]:
    """One collect per source (sources are read independently; their order is the order of the rows)."""
    check_unique_names(options)
    return [options.model_copy(update={"sources": [source]}) for source in options.sources]


STAGE = Stage(name="collect", Options=CollectOptions, run=run, creates_rows=True, parts=per_source,
              batches=batches,
              writes=("id", "source", "source_id", "source_license", "lang", "prompt", "response", "reasoning",
                      "source_labels", "categories", "label_origin", "prompt_harmful", "response_kind", "attack",
                      "drop_reason", "role", "prompt_template", "answer_origin", "meta"),
              help="Read sources (files, HF datasets, built-in presets), map labels, normalise, detect language.")

__all__ = ["STAGE", "CollectOptions", "run"]
