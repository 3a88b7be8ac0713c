"""Options of the review stage (also its CLI flags and pipeline YAML keys)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from curate.stage import StageOptions


class ReviewOptions(StageOptions):
    enabled: bool = Field(True, description="Push samples to Label Studio and merge finished reviews "
                                             "(needs LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY).")
    project: str | None = Field(None, description="Label Studio project title (default: 'curate <run name>').")
    sample: int | None = Field(200, ge=0, description="Records to send for review (omit or null: every record "
                                                      "the strategy selects).")
    strategy: Literal["stratified", "uncertain", "disagreement", "all"] = Field(
        "stratified", description="Sampling: stratified (dimension x language), uncertain (low classifier "
                                  "confidence first), disagreement (source labels vs classifier first), all.")
    seed: int = Field(0, description="Seed of the sample (same input and seed: same sample).")
    overlap: int = Field(1, ge=1, le=20, description="Annotators per task (2 or more measures agreement).")
    conflict: Literal["majority", "adjudicate"] = Field(
        "majority", description="When annotators disagree: majority decides (ties are flagged), or adjudicate "
                                "(any disagreement is flagged for an adjudicator, nothing overridden).")
    wait: bool = Field(False, description="Poll until every pushed task is done (or the timeout), then merge.")
    poll_interval: float = Field(30.0, gt=0, description="Seconds between polls when waiting.")
    timeout: float = Field(3600.0, gt=0, description="Seconds to wait at most when waiting.")
    batch_size: int = Field(100, ge=1, le=5000, description="Tasks per import request.")
    reviewer_lang: Literal["en", "zh"] = Field("en", description="The reviewers' language: its guidelines come "
                                                                 "first in Label Studio's Instructions page.")
