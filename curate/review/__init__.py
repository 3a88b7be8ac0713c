"""review: human review in Label Studio (push samples, pull and merge decisions, agreement, status)."""
from curate.review.options import ReviewOptions
from curate.review.stage import run
from curate.stage import Stage

STAGE = Stage(
    name="review",
    Options=ReviewOptions,
    run=run,
    writes=("categories", "label_origin", "prompt_harmful", "response", "drop_reason"),
    help="Send a sample to Label Studio for human review and merge what reviewers finished "
         "(human labels, edited answers, rejections); does not block unless --wait.",
    always_run=True,  # every run pulls what reviewers finished since the last one
)

__all__ = ["STAGE", "ReviewOptions", "run"]
