"""synthesize on the Dask engine, over real HTTP (the scripted OpenAI-compatible server on 127.0.0.1).

The plan, the sample and the near-duplicate selection stay on the machine running curate; the requests go out
in batches from 2 worker processes through the one response cache. Same output as the local engine (every
column of every row), nothing paid twice, the run's budget honoured across batches, and with the embedded
model the workers talk to the one server the run started, with its key.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from curate.engine import LOCAL, open_engine
from curate.contract import run_stage
from curate.stage import StageContext
from curate.synthesize import STAGE, SynthesizeOptions
from tests.fixtures.openai_server import _openai_server_session, openai_server  # noqa: F401
from tests.servers.openai_compat import Reply
from tests.test_engine_dask import cluster, dask_on  # noqa: F401 - the module's LocalCluster fixture
from tests.test_synthesize import dims, frame, good_reply, meta  # noqa: F401 - dims is a fixture

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'curate[dask]'")
pytestmark = pytest.mark.dask

TWIN = "I can't help with that. If you are worried about safety, local authorities and hotlines can help you."


def scripted(body: dict) -> Reply:
    """Answers that depend on the request alone (never on arrival order): good ones, identical ones for the
    [twin] prompts (near-duplicates), too short ones, and judge scores."""
    last = body["messages"][-1]["content"]
    if last.startswith("<data>"):
        data = json.loads(last[len("<data>\n"):-len("\n</data>")])
        score = 9 if len(data["assistant_reply"]) % 2 else 8
        return Reply(content=json.dumps({"policy_adherence": score, "safety": score, "helpfulness": score,
                                         "reasoning_quality": score, "rationale": "r"}))
    if "[twin]" in last:
        return Reply(content=TWIN, reasoning="The policy says to refuse this request, so I decline it.")
    if "[short]" in last and body.get("seed") == 0:
        return Reply(content="No.", reasoning="Reasoning that is long enough to pass the check.")
    return good_reply(body)


def corpus(dims) -> pl.DataFrame:
    """40 rows in both languages and three goals; the twins and the broken ones spread over all batches."""
    refuse, careful = dims
    rows = []
    for i in range(40):
        zh = i % 3 == 1
        tag = "[twin]" if i % 9 == 0 else "[short]" if i % 7 == 3 else "[broken]" if i in (11, 29) else ""
        kind = i % 4
        prompt = f"问题 {i}：怎样处理这件事？{tag}" if zh else f"question {i} about handling this {tag}"
        rows.append({"prompt": prompt,
                     "lang": "zh" if zh else "en",
                     **({"categories": [refuse.id]} if kind < 2 else
                        {"categories": [careful.id]} if kind == 2 else {"prompt_harmful": False})})
    rows.append({"prompt": "a source row with its answer", "response": TWIN, "response_kind": "refusal",
                 "categories": [refuse.id]})  # already in the corpus: every [twin] answer duplicates it
    return frame(rows)


def synthesize(df, engine, work_dir: Path, server, **opts) -> tuple[pl.DataFrame, dict]:
    options = SynthesizeOptions(base_url=opts.pop("base_url", server.base_url), model="writer", backoff_base=0.01,
                                timeout=10, max_retries=1, kind_detector="phrases", **opts)
    ctx = StageContext(stage="synthesize", work_dir=work_dir, log=lambda m: None, engine=engine)
    return run_stage(STAGE, df, options, ctx), ctx.stats


def test_synthesize_on_dask_equals_the_local_engine_and_a_rerun_pays_nothing(cluster, openai_server, tmp_path,
                                                                             dims):
    openai_server.responder = scripted
    openai_server.add_rule(Reply(status=400, content="bad request"), match="[broken]")
    df = corpus(dims)
    opts = dict(n_candidates=2, judge=True)
    local, local_stats = synthesize(df, LOCAL, tmp_path / "local", openai_server, **opts)
    local_requests = openai_server.count
    assert local_requests == local_stats["requests"] > 80  # 2 candidates per row, then the judge

    with open_engine(dask_on(cluster, shard_rows=5), lambda m: None) as engine:
        openai_server.reset()
        openai_server.responder = scripted
        openai_server.add_rule(Reply(status=400, content="bad request"), match="[broken]")
        with distributed.get_task_stream(client=engine.client) as tasks:
            first, stats = synthesize(df, engine, tmp_path / "dask", openai_server, **opts)
        assert openai_server.count == local_requests == stats["requests"]
        batches = [t for t in tasks.data if str(t["key"]).startswith("llm-")]
        assert len(batches) > 4 and len({t["worker"] for t in batches}) == 2  # sent from both workers
        assert_frame_equal(first, local)  # every column of every row, meta (lineage, candidates, judge) included
        for key in ("rows", "goals", "requests", "cache_hits", "failed", "prompt_tokens", "completion_tokens"):
            assert stats[key] == local_stats[key], key

        second, again = synthesize(df, engine, tmp_path / "dask", openai_server, **opts)
    # the second run pays for nothing: the only requests sent are the 4 that failed (a failure is not an answer,
    # so it is asked again, as by the local engine); every answer comes from the one cache the workers filled
    asked_again = openai_server.requests[local_requests:]
    assert len(asked_again) == again["requests"] == 4 and all("[broken]" in b["messages"][-1]["content"]
                                                               for b in asked_again)
    assert again["cache_hits"] == local_requests - 4
    assert_frame_equal(second, local)

    statuses = [meta(local, i)["status"] for i in range(40)]
    drops = local["drop_reason"].to_list()
    assert drops.count("synth_near_duplicate") == 4 and drops.count("synthesis_failed") == 2  # the checks ran
    assert drops.count("synth_kind_mismatch") == 1  # the [twin] refusal of a benign prompt
    assert statuses.count("synthesized") == 33
    assert sum(c["reason"] == "synth_too_short" for i in range(40) for c in meta(local, i)["candidates"]) > 0


def test_a_budget_is_the_runs_across_batches(cluster, openai_server, tmp_path, dims):
    openai_server.responder = scripted
    df = corpus(dims)
    local, local_stats = synthesize(df, LOCAL, tmp_path / "local", openai_server, max_requests=13, concurrency=4,
                                    near_duplicate_threshold=0)
    assert openai_server.count == 13
    openai_server.reset()
    openai_server.responder = scripted
    with open_engine(dask_on(cluster, shard_rows=4), lambda m: None) as engine:
        budgeted, stats = synthesize(df, engine, tmp_path / "dask", openai_server, max_requests=13, concurrency=4,
                                     near_duplicate_threshold=0)
        assert openai_server.count == 13 and stats["requests"] == 13
        assert stats["budget_stopped"] == local_stats["budget_stopped"] > 0
        assert_frame_equal(budgeted, local)
        resumed, more = synthesize(df, engine, tmp_path / "dask", openai_server, concurrency=4,
                                   near_duplicate_threshold=0)
    assert more["cache_hits"] == 13 and openai_server.count == 13 + more["requests"]
    assert [meta(resumed, i)["status"] for i in range(40)].count("pending") == 0


def test_with_the_embedded_model_workers_reach_the_runs_one_server_with_its_key(cluster, openai_server, tmp_path,
                                                                                dims, monkeypatch):
    """``base_url: local``: the run's server (here the scripted server standing in for llama-server, so no model
    is started) is resolved once, here; its per-run key is not in the workers' environment (they were started
    before it existed) and travels with their tasks."""
    from curate.llm.local.endpoint import KEY_ENV, LocalSession
    from curate.llm.local.server import ServerInfo

    monkeypatch.delenv(KEY_ENV, raising=False)
    openai_server.responder = scripted
    me = Path("/proc/self/cmdline").read_bytes().split(b"\0")[0].decode()  # is_our_server checks the binary
    port = int(openai_server.base_url.rsplit(":", 1)[1].split("/")[0])
    key = "loopback-key-4e1d"
    df = corpus(dims).head(12)
    outs = []
    for engine_name in ("local", "dask", "dask"):
        with LocalSession(log=lambda m: None) as session:
            session.info = ServerInfo(pid=os.getpid(), port=port, model="qwen-embedded", model_path="", binary=me,
                                      slots=4, api_key=key, log_path="", started=0.0)
            os.environ[KEY_ENV] = key  # as session.server() does when it starts the server; close() removes it
            with open_engine(dask_on(cluster, shard_rows=3) if engine_name == "dask" else None,
                             lambda m: None) as engine:
                out, stats = synthesize(df, engine, tmp_path / engine_name, openai_server, base_url="local", sample=0,
                                        near_duplicate_threshold=0)
        outs.append(out)
        # the embedded model's defaults ask 2 candidates per row
        assert stats["requests"] + stats["cache_hits"] == 24 and stats["model"] == "qwen-embedded"
    assert stats["cache_hits"] == 24  # the second Dask run: 0 HTTP requests
    assert openai_server.count == 48
    assert {h["authorization"] for h in openai_server.headers} == {f"Bearer {key}"}
    assert all("grammar" in body for body in openai_server.requests)  # the embedded model's shape grammar
    assert_frame_equal(outs[1], outs[0])
    assert_frame_equal(outs[2], outs[0])
    assert KEY_ENV not in os.environ
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
