"""synthesize inside a pipeline run: manifest stats, resume from the cache, skip line, no key in the run folder."""
from __future__ import annotations

import json


from curate.pipeline import run_pipeline
from tests.fixtures.openai_server import _openai_server_session, openai_server  # noqa: F401
from tests.servers.openai_compat import Reply


SECRET = "sk-pipeline-1f2e3d4c5b6a7980"


def answer(body: dict) -> Reply:
    """Refuse what the system turn says must be refused, help otherwise; quote the prompt to stay unique."""
    system, prompt = body["messages"][0]["content"], body["messages"][-1]["content"]
    if "must not provide" in system:
        return Reply(content=f"I can't help with that. Instead of details on {prompt!r}, here is general safety advice.",
                     reasoning=f"The request {prompt!r} falls under a refuse policy, so I decline and redirect.")
    return Reply(content=f"Sure. Here is a helpful, direct answer to {prompt!r} with the key points.",
                 reasoning=f"The request {prompt!r} is benign, so I answer it plainly and helpfully.")


def write_pipeline(tmp_path, repo, extra: str = "") -> object:
    path = tmp_path / "pipe.yaml"
    path.write_text(f"""name: synth-test
run_dir: {tmp_path / 'run'}
report: false
stages:
  - collect:
      sources:
        - {{preset: xstest, path: {repo / 'pipelines/data/quickstart/xstest'}}}
  - synthesize:
      model: writer
      backoff_base: 0.01
      kind_detector: phrases
      near_duplicate_threshold: 0
{extra}""", encoding="utf-8")
    return path


def test_pipeline_synthesizes_resumes_and_writes_no_key(openai_server, tmp_path, repo, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    openai_server.responder = answer
    pipe = write_pipeline(tmp_path, repo, "      max_requests: 20\n")
    logs: list[str] = []
    result = run_pipeline(pipe, log=logs.append)
    assert openai_server.count == 20
    manifest = json.loads((result.run_dir / "02-synthesize" / "_manifest.json").read_text())
    stats = manifest["stats"]
    assert stats["requests"] == 20 and stats["budget_stopped"] > 0 and stats["model"] == "writer"
    assert stats["rows"]["pending"] == stats["budget_stopped"]
    assert result.funnel.balanced and result.funnel.pending >= stats["budget_stopped"]
    total = sum(stats["goals"].values())

    # resume: a larger budget is a changed config, so the stage re-runs; what was received comes from the cache
    pipe = write_pipeline(tmp_path, repo)
    result = run_pipeline(pipe, log=logs.append)
    stats = json.loads((result.run_dir / "02-synthesize" / "_manifest.json").read_text())["stats"]
    assert stats["cache_hits"] == 20 and stats["requests"] == total - 20 and openai_server.count == total
    assert stats["rows"].get("pending", 0) == 0
    final = result.final
    assert final["response"].null_count() == 0 and final["drop_reason"].null_count() == final.height
    refusals = final.filter(final["response_kind"] == "refusal")
    assert refusals.height > 100 and refusals["prompt_harmful"].all()
    assert refusals["response"].str.starts_with("I can't").all()

    # unchanged: skipped, no request
    run_pipeline(pipe, log=logs.append)
    assert openai_server.count == total and any("synthesize] unchanged" in line for line in logs)

    assert openai_server.headers[-1]["authorization"] == f"Bearer {SECRET}"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in "\n".join(logs)


def test_pipeline_without_endpoint_says_so_once(tmp_path, repo, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "off")  # model calls switched off (unset would mean the embedded model)
    logs: list[str] = []
    result = run_pipeline(write_pipeline(tmp_path, repo), log=logs.append)
    skipped = [line for line in logs if "skipped" in line and "synthesize" in line]
    assert len(skipped) == 1 and "OPENAI_BASE_URL" in skipped[0]
    assert result.funnel.balanced and result.funnel.kept == 0 and not result.funnel.dropped
