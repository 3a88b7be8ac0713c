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
