"""Review stage against a real Label Studio (its own venv, `make label-studio-env`): push, re-push, pull, merge.

    python benchmarks/review_bench.py [--tasks 2000] [--annotated 100]

Baselines measured in the same run on the same server:
- push in batches of 100 vs one task per request (what a naive loop over records does);
- the re-push listing of record ids (``include=id,data``) vs listing full tasks;
- an incremental pull with nothing new vs the first (full) pull.
Label Studio's development server is single-threaded: figures depend on the machine's load; compare ratios.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate import records  # noqa: E402
from curate.review.client import connect  # noqa: E402
from curate.review.merge import merge  # noqa: E402
from curate.review.pull import pull, state_path  # noqa: E402
from curate.review.push import existing_record_ids, find_project, push  # noqa: E402
from curate.review.tasks import task  # noqa: E402
from curate.taxonomy import Taxonomy  # noqa: E402
from tests.servers.label_studio import LabelStudioServer, installed  # noqa: E402


def corpus(n: int) -> pl.DataFrame:
    rows = [{"id": f"r{i:06d}", "source": "bench", "source_id": str(i), "lang": "zh" if i % 2 else "en",
             "prompt": f"prompt {i} " * 20, "response": f"answer {i} " * 40, "reasoning": f"think {i} " * 40,
             "categories": [f"S{(i % 14) + 1:02d}"], "category_scores": json.dumps({f"S{(i % 14) + 1:02d}": 0.7}),
             "label_origin": "classifier", "prompt_harmful": True} for i in range(n)]
    return records.conform(pl.DataFrame(rows))


MARKDOWN_ANSWER = ("I can't help with that. Here is **why**, and [a resource](https://example.org).\n\n"
                   "- one\n- two\n") * 6  # ~600 characters of the Markdown models write


def task_building(df: pl.DataFrame, tax: Taxonomy) -> str:
    """Tasks built per second (Markdown rendered and sanitised at push time), plain and Markdown answers."""
    plain = df.to_dicts()
    rich = [{**r, "response": MARKDOWN_ANSWER, "reasoning": MARKDOWN_ANSWER} for r in plain]
    rates = []
    for rows in (plain, rich):
        _, seconds = timed(lambda: [task(r, "S01/en", 0.5, "bench", tax) for r in rows])
        rates.append(len(rows) / seconds)
    return (f"task building (render + sanitise, no server): {rates[0]:.0f} tasks/s with plain answers, "
            f"{rates[1]:.0f} tasks/s with ~600-character Markdown answer and reasoning")


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--annotated", type=int, default=100)
    args = parser.parse_args()
    if not installed():
        print("Label Studio is not installed: run `make label-studio-env` first; skipped")
        return 0
    df, tax, quiet = corpus(args.tasks), Taxonomy.load(), (lambda m: None)
    print(task_building(df, tax))
    with LabelStudioServer() as server:
        client = connect(server.url, server.token)
        stats, t_push = timed(lambda: push(client, df, "bench", taxonomy=tax, sample=None, strategy="all", log=quiet))
        small = df.head(200)
        _, t_naive = timed(lambda: push(client, small, "bench naive", taxonomy=tax, sample=None, strategy="all",
                                        batch_size=1, log=quiet))
        rate, naive_rate = stats["imported"] / t_push, small.height / t_naive
        print(f"push {stats['imported']} tasks in batches of 100: {t_push:.1f}s = {rate:.0f} tasks/s; one task "
              f"per request: {naive_rate:.0f} tasks/s -> {rate / naive_rate:.1f}x")

        project = find_project(client, "bench")
        again, t_again = timed(lambda: push(client, df, "bench", taxonomy=tax, sample=None, strategy="all", log=quiet))
        assert again["imported"] == 0
        _, t_ids = timed(lambda: existing_record_ids(client, project.id))
        _, t_full = timed(lambda: [t.data["record_id"] for t in client.iterate(
            lambda: client.ls.tasks.list(project=project.id, page_size=500))])
        print(f"re-push with nothing new: {t_again:.1f}s; listing {args.tasks} record ids: {t_ids:.1f}s vs full "
              f"tasks {t_full:.1f}s -> {t_full / t_ids:.1f}x")

        task_ids = [t.id for t in client.ls.tasks.list(project=project.id, page_size=500, include="id")]
        _, t_ann = timed(lambda: [client.ls.annotations.create(id=tid, result=[
            {"from_name": "verdict", "to_name": "response", "type": "choices", "value": {"choices": ["accept"]}}])
            for tid in task_ids[:args.annotated]])
        path = state_path(Path(tempfile.mkdtemp()), "bench")
        (state, first), t_first = timed(lambda: pull(client, project.id, path))
        (_, second), t_second = timed(lambda: pull(client, project.id, path, overlap=timedelta(0)))
        print(f"{args.annotated} annotations created through the API in {t_ann:.1f}s (server side); first pull "
              f"({first['tasks_fetched']} tasks): {t_first:.2f}s; incremental pull with nothing new "
              f"({second['tasks_fetched']} tasks): {t_second:.2f}s -> {t_first / max(t_second, 1e-6):.1f}x")
        (_, merged), t_merge = timed(lambda: merge(df, state, harm_ids=tax.harm_ids))
        print(f"merge {merged['reviewed']} reviews into {df.height} records: {t_merge * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
