"""Shared test fixtures. Real components only: servers run on 127.0.0.1, data comes from files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Nothing in the suite starts the 1.1 GB embedded model by accident: a test that wants a model names one
# (the scripted server, or the session's embedded_llm fixture); tests of the default itself unset this.
os.environ.setdefault("OPENAI_BASE_URL", "off")
SHARED_DATA = REPO.parent / "shared" / "data"
QUICKSTART_DATA = REPO / "pipelines" / "data" / "quickstart"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full public datasets beside the checkout (developers only; users and forks may not have them)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not present at {SHARED_DATA}: full-dataset checks need the developers' copy")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory) -> Path:
    """The quickstart pipeline run end to end into a temporary run folder (offline, bundled sample)."""
    from curate.pipeline import run_pipeline

    run_dir = tmp_path_factory.mktemp("quickstart") / "run"
    result = run_pipeline(REPO / "pipelines" / "quickstart.yaml", run_dir=run_dir, log=lambda m: None)
    assert result.funnel.balanced
    return run_dir


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (screenshots); kept after the run."""
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def prepared_llm():
    """(llama-server, model file) from the cache, fetched/built if missing (``make test`` runs ``make llm`` first);
    a machine with neither a llama-server nor a C++ compiler skips the real-model tests with the reason."""
    from curate.llm.local.endpoint import prepare
    from curate.llm.local.runtime import compiler, find_server

    if find_server() is None and compiler() is None:
        pytest.skip("no llama-server and no C++ compiler to build one: the real-model tests need `make llm`")
    return prepare(log=lambda m: None)


@pytest.fixture(scope="session")
def embedded_llm(prepared_llm, tmp_path_factory):
    """The real embedded model (Qwen2.5-Coder-1.5B on llama.cpp), started once for the session, stopped at the end."""
    from curate.llm.local.endpoint import launch
    from curate.llm.local.server import stop_pid

    info = launch(detached=False, log=lambda m: None, log_path=tmp_path_factory.mktemp("llm") / "server.log")
    os.environ[EMBEDDED_KEY_ENV] = info.api_key
    try:
        yield info
    finally:
        stop_pid(info.pid)
        os.environ.pop(EMBEDDED_KEY_ENV, None)


EMBEDDED_KEY_ENV = "CURATE_TEST_EMBEDDED_KEY"
