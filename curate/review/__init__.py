"""review: human review in Label Studio (push samples, pull and merge decisions, agreement, status)."""
from curate.review.options import ReviewOptions
from curate.review.stage import run
from curate.stage import Stage

STAGE = Stage(
    name="review",
    Options=ReviewOptions,
    run=run,
    reads=("id", "prompt", "reasoning", "response", "lang", "source", "categories", "category_scores",
           "prompt_harmful", "response_kind", "label_origin", "drop_reason", "category_disagreement",
           "harmful_disagreement", "answer_model"),
    writes=("categories", "label_origin", "prompt_harmful", "response", "response_kind", "drop_reason", "reviewed", "meta"),
    help="Send a sample to Label Studio for human review and merge what reviewers finished "
         "(human labels, edited answers, rejections); does not block unless --wait.",
    always_run=True,  # every run pulls what reviewers finished since the last one
)

__all__ = ["STAGE", "ReviewOptions", "run"]
