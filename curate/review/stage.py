"""The review stage in a pipeline: pull what reviewers finished, push the sample, go on (never blocks
unless ``wait`` is set). Without LABEL_STUDIO_URL it passes the rows through and says how to enable it."""
from __future__ import annotations

import time
from typing import Literal

import polars as pl
from pydantic import Field

from curate.review.client import URL_ENV, configured, connect
from curate.review.merge import merge
from curate.review.pull import pull, state_path
from curate.review.push import default_title, find_project, push
from curate.review.status import project_status
from curate.stage import StageContext, StageOptions
from curate.taxonomy import Taxonomy


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


def run(df: pl.DataFrame, opts: ReviewOptions, ctx: StageContext) -> pl.DataFrame:
    if not opts.enabled:
        ctx.log("review: disabled (enabled: false); rows passed through")
        ctx.stats["skipped"] = "disabled"
        return df
    if not configured():
        ctx.log(f"review: skipped ({URL_ENV} is not set); to review samples, start Label Studio "
                "(`make label-studio`) and set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY")
        ctx.stats["skipped"] = f"{URL_ENV} not set"
        return df
    client = connect()  # a down server or a wrong key stops here, before anything changed
    taxonomy = Taxonomy.load(ctx.taxonomy_path)
    title = opts.project or default_title(ctx.run_dir)
    path = state_path(ctx.work_dir, title)
    out = df
    if find_project(client, title) is not None:
        out = _pull_merge(client, df, title, path, taxonomy, opts, ctx)
    ctx.stats["push"] = push(client, df, title, taxonomy=taxonomy, sample=opts.sample, strategy=opts.strategy,
                             seed=opts.seed, overlap=opts.overlap, batch_size=opts.batch_size,
                             reviewer_lang=opts.reviewer_lang, log=ctx.log)
    if opts.wait:
        deadline = time.monotonic() + opts.timeout
        while True:
            status = project_status(client, title, taxonomy.harm_ids)
            ctx.log(f"review: {status['done']}/{status['tasks']} tasks done")
            if status["pending"] == 0 or time.monotonic() >= deadline:
                break
            time.sleep(min(opts.poll_interval, max(0.0, deadline - time.monotonic())))
        ctx.stats["waited_pending"] = status["pending"]
        out = _pull_merge(client, df, title, path, taxonomy, opts, ctx)
    return out


def _pull_merge(client, df, title, path, taxonomy, opts, ctx) -> pl.DataFrame:
    project = find_project(client, title)
    state, pulled = pull(client, project.id, path)
    out, merged = merge(df, state, harm_ids=taxonomy.harm_ids, rule=opts.conflict, project=title)
    ctx.stats["pull"], ctx.stats["merge"] = pulled, merged
    ctx.log(f"review: merged {merged['reviewed']} reviewed records ({merged['edited']} edited, "
            f"{merged['rejected']} rejected, {merged['needs_adjudication']} need adjudication)")
    return out
