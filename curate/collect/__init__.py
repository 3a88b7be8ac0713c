"""collect: read sources (files, HF datasets, presets), map labels to the taxonomy, normalise, detect language.

Every raw row becomes a record or a quarantined line with its file, line and reason.
"""
from curate.collect.options import CollectOptions
from curate.collect.stage import run
from curate.stage import Stage

STAGE = Stage(name="collect", Options=CollectOptions, run=run, creates_rows=True,
              help="Read sources (files, HF datasets, built-in presets), map labels, normalise, detect language.")

__all__ = ["STAGE", "CollectOptions", "run"]
