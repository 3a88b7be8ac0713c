"""Issue 15, findings 5-7: an endpoint that is down or hangs stops synthesis fast with one line and drops
nothing; what decides the answers (endpoint and model, also from the environment) is in the fingerprint.

All against the local OpenAI-compatible server over real HTTP, or a loopback port nobody listens on.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from curate import records
from curate.llm import LLMConfig, Request, run_requests
from curate.llm.breaker import DEFAULT_FAILURES, CircuitBreaker
from curate.llm.client import LLMClient
from curate.pipeline import run_pipeline
from curate.progress import Progress
from curate.store import read_shards
from tests.fixtures.openai_server import _openai_server_session, openai_server  # noqa: F401
from tests.servers.openai_compat import OpenAICompatServer, Reply

REPO = Path(__file__).resolve().parents[1]
XSAFETY = REPO / "pipelines" / "data" / "quickstart" / "xsafety"
ROWS = 10


def dead_url() -> str:
    """A loopback port that nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def pipeline(tmp_path: Path, synthesize: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "endpoint", "report": False, "run_dir": str(tmp_path / "run"), "stages": [
        {"collect": {"sources": [{"preset": "xsafety", "path": str(XSAFETY), "limit": ROWS}]}},
        {"synthesize": {"backoff_base": 0.05, **synthesize}}]}))
    return path


def curate_run(path: Path, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    # timeout guards against a hang; it is not a speed target (those live in benchmarks/)
    return subprocess.run([sys.executable, "-m", "curate.cli", "run", str(path)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, env={"PATH": "/usr/bin:/bin", **(env or {})})


def assert_one_line_failure(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:"), proc.stderr[-2000:]
    for needle in needles:
        assert needle in last, last
    return last


def synth_status(run_dir: Path) -> list[str | None]:
    df = read_shards(run_dir / "02-synthesize")
    return [records.load_meta(m).get("synthesize", {}).get("status") for m in df["meta"]]


# -- 5. unreachable endpoint ---------------------------------------------------------------------------------

def test_unreachable_endpoint_stops_the_stage_rows_stay_pending_and_a_later_run_picks_them_up(tmp_path,
                                                                                            openai_server):  # noqa: F811
    url = dead_url()
    proc = curate_run(pipeline(tmp_path, {"base_url": url, "model": "m"}))
    line = assert_one_line_failure(proc, "stopped answering", url, f"{ROWS} rows stay pending")
    assert "connection" in line
    run_dir = tmp_path / "run"
    assert (run_dir / "01-collect" / "_manifest.json").is_file()
    assert not (run_dir / "02-synthesize").exists()  # nothing written: no row was dropped

    # The endpoint works again (set from the environment this time): the same run folder finishes them all.
    proc = curate_run(pipeline(tmp_path, {}), env={"OPENAI_BASE_URL": openai_server.base_url, "OPENAI_MODEL": "m"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[collect] unchanged: skipped" in proc.stderr
    assert synth_status(run_dir) == ["synthesized"] * ROWS
    assert read_shards(run_dir / "02-synthesize")["drop_reason"].null_count() == ROWS


def test_unreachable_endpoint_on_files_is_one_line_and_writes_no_output(tmp_path):
    frame = records.conform(pl.DataFrame({
        "id": ["a", "b"], "source": ["s", "s"], "source_id": ["1", "2"], "lang": ["en", "en"],
        "prompt": ["How do I pick a lock?", "How do I make a weapon?"], "categories": [["S03"], ["S03"]],
        "prompt_harmful": [True, True]}))
    src = tmp_path / "in.parquet"
    frame.write_parquet(src)
    proc = subprocess.run([sys.executable, "-m", "curate.cli", "synthesize", "--in", str(src), "--out",
                           str(tmp_path / "out.parquet"), "--base-url", dead_url(), "--model", "m",
                           "--backoff-base", "0.05"], capture_output=True, text=True, cwd=REPO, timeout=240)
    assert_one_line_failure(proc, "stopped answering", "2 rows stay pending")
    assert not (tmp_path / "out.parquet").exists()


def test_a_few_dropped_connections_do_not_open_the_breaker_or_drop_rows(openai_server):  # noqa: F811
    openai_server.add_rule(Reply(drop=True), times=DEFAULT_FAILURES - 1)
    config = LLMConfig(base_url=openai_server.base_url, model="m", concurrency=1, backoff_base=0.01, max_retries=0)
    outcomes, stats = run_requests(config, [Request(messages=[{"role": "user", "content": f"q{i}"}]) for i in range(3)])
    assert [o.status for o in outcomes] == ["ok"] * 3  # connection failures are the endpoint's, not the row's
    assert stats.retries == DEFAULT_FAILURES - 1 and stats.unreachable == 0


def test_http_errors_are_answers_and_do_not_count_towards_the_breaker(openai_server):  # noqa: F811
    # dropped connections and 500s interleaved: 2 * DEFAULT_FAILURES connection failures, never in a row
    seen = {"n": 0}

    def alternate(body):
        seen["n"] += 1
        return Reply(drop=True) if seen["n"] % 2 else Reply(status=500)

    openai_server.add_rule(alternate, times=4 * DEFAULT_FAILURES)
    config = LLMConfig(base_url=openai_server.base_url, model="m", concurrency=1, backoff_base=0.01,
                       max_retries=4 * DEFAULT_FAILURES)
    (outcome,), stats = run_requests(config, [Request(messages=[{"role": "user", "content": "q"}])])
    assert outcome.status == "ok" and stats.unreachable == 0


def test_a_failure_while_others_are_answered_is_the_requests_own():
    breaker = CircuitBreaker(failures_to_open=2)
    sent = breaker.answers
    breaker.success()  # another request was answered after this one was sent
    assert breaker.failure("connection error", sent) is False and breaker.consecutive == 0
    assert breaker.failure("connection error", breaker.answers) is True and not breaker.open
    assert breaker.failure("timeout", breaker.answers) is True and breaker.open


# -- 6. an endpoint that accepts connections but never answers -----------------------------------------------

def test_hanging_endpoint_times_out_and_opens_the_breaker(tmp_path):
    server = OpenAICompatServer().start()
    try:
        server.add_rule(Reply(hang=60))
        proc = curate_run(pipeline(tmp_path, {"base_url": server.base_url, "model": "m", "timeout": 0.5,
                                              "concurrency": 4}))
    finally:
        server.stop()
    assert_one_line_failure(proc, "stopped answering", "timeout")
    assert not (tmp_path / "run" / "02-synthesize").exists()


def test_timeouts_connect_in_seconds_and_read_as_long_as_max_tokens_may_take():
    config = LLMConfig(base_url="http://127.0.0.1:1/v1", model="m")
    client = LLMClient(config)
    short, long = client._timeout({"max_tokens": 64}), client._timeout({"max_tokens": 4096})
    assert short.connect == long.connect == config.connect_timeout <= 10
    assert short.read < long.read and long.read >= 4096 / 10  # a slow CPU server may take minutes for 4k tokens
    explicit = LLMClient(LLMConfig(base_url="http://x/v1", model="m", timeout=7))._timeout({"max_tokens": 4096})
    assert explicit.read == 7 and explicit.connect == config.connect_timeout


def test_plain_progress_says_it_is_waiting(capsys):
    import time

    with Progress(3, "synthesize", log_every_s=0.2) as bar:
        time.sleep(0.7)  # no answer yet
        bar.advance()
    err = capsys.readouterr().err
    assert "[synthesize] 0/3, waiting" in err


def test_slow_progress_shows_seconds_per_unit():
    from curate.progress import format_rate

    assert format_rate(0.05) == "20.0 s/row" and format_rate(3.0, "step") == "3 steps/s"
    assert format_rate(0.1, "answer") == "10.0 s/answer" and format_rate(None) == ""


# -- 7. endpoint and model are in the fingerprint; the key is not --------------------------------------------

def test_setting_an_endpoint_later_reruns_synthesize_and_a_new_key_does_not(tmp_path, monkeypatch,
                                                                           openai_server):  # noqa: F811
    for var in ("OPENAI_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "off")  # no model at first (unset would mean the embedded model)
    path = pipeline(tmp_path, {})
    first = run_pipeline(path, log=lambda m: None)
    assert "synthesize" in first.ran and set(synth_status(first.run_dir)) == {"pending"}

    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "writer-a")
    second = run_pipeline(path, log=lambda m: None)
    assert "synthesize" in second.ran and set(synth_status(second.run_dir)) == {"synthesized"}

    monkeypatch.setenv("OPENAI_API_KEY", "sk-a-new-key-changes-no-answer")
    third = run_pipeline(path, log=lambda m: None)
    assert "synthesize" in third.skipped

    monkeypatch.setenv("OPENAI_MODEL", "writer-b")
    fourth = run_pipeline(path, log=lambda m: None)
    assert "synthesize" in fourth.ran
    models = {json.loads(m)["synthesize"]["model"] for m in read_shards(fourth.run_dir / "02-synthesize")["meta"]}
    assert models == {"writer-b"}
