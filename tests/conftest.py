"""Shared test fixtures. Real components only: servers run on 127.0.0.1, data comes from files."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
