"""classify: harm dimensions (S00..S14), harmful flag and response kind for every record.

A fastText prompt model (multi-label, one-vs-all, per-dimension thresholds calibrated on validation data)
and a response-kind model, trained by ``curate classifier train``; low-confidence rows can go to an LLM judge.
"""
from curate.classify.options import ClassifyOptions
from curate.classify.stage import FACTS, run
from curate.stage import Stage


def per_row(options: ClassifyOptions) -> bool:
    """Rows are classified one by one, except that a judge budget picks the least confident rows of all."""
    return not (options.judge and options.judge_max_rows is not None)


STAGE = Stage(name="classify", Options=ClassifyOptions, run=run, shardable=per_row,
              reads=("prompt", "response", "lang", "categories", "category_scores", "prompt_harmful", "response_kind",
                     "label_origin", "drop_reason"),
              writes=("categories", "category_scores", "prompt_harmful", "response_kind", "label_origin", *FACTS, "meta"),
              help="Fill harm dimensions, scores, harmful flag and response kind where sources did not; "
                   "record disagreements; optional LLM judge for low-confidence rows.")
