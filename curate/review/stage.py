"""The review stage in a pipeline: pull what reviewers finished, push the sample, go on (never blocks
unless ``wait`` is set). Without LABEL_STUDIO_URL it passes the rows through and says how to enable it."""
from __future__ import annotations

import time

import polars as pl

from curate.review.client import URL_ENV, configured
from curate.review.options import ReviewOptions
from curate.review.pull import state_path
from curate.review.push import default_title
from curate.review.session import ReviewSession
from curate.stage import StageContext


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
    session = ReviewSession.open(taxonomy_path=ctx.taxonomy_path)  # a down server or a wrong key stops here
    title = opts.project or default_title(ctx.run_dir)
    path = state_path(ctx.work_dir, title)
    out = df
    if session.has_project(title):
        out = _pull_merge(session, df, title, path, opts, ctx)
    ctx.stats["push"] = session.push(df, title, sample=opts.sample, strategy=opts.strategy, seed=opts.seed,
                                     overlap=opts.overlap, batch_size=opts.batch_size,
                                     reviewer_lang=opts.reviewer_lang, log=ctx.log)
    if opts.wait:
        deadline = time.monotonic() + opts.timeout
        while True:
            status = session.status(title)
            ctx.log(f"review: {status['done']}/{status['tasks']} tasks done")
            if status["pending"] == 0 or time.monotonic() >= deadline:
                break
            time.sleep(min(opts.poll_interval, max(0.0, deadline - time.monotonic())))
        ctx.stats["waited_pending"] = status["pending"]
        out = _pull_merge(session, df, title, path, opts, ctx)
    return out


def _pull_merge(session: ReviewSession, df: pl.DataFrame, title: str, path, opts: ReviewOptions,
                ctx: StageContext) -> pl.DataFrame:
    out, pulled, merged = session.pull_merge(df, title, path, opts.conflict)
    ctx.stats["pull"], ctx.stats["merge"] = pulled, merged
    ctx.log(f"review: merged {merged['reviewed']} reviewed records ({merged['edited']} edited, "
            f"{merged['rejected']} rejected, {merged['needs_adjudication']} need adjudication)")
    return out
