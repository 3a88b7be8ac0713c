"""Where the files curate reads at run time live. taxonomy/ and annotations/ sit at the top of the repository;
a built wheel carries them inside the package as curate/bundled/<name> (setup.py maps them at build time), so an
installed curate (a wheel, or pip install of the repository, as on a cluster's workers) finds them too."""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
REPOSITORY = PACKAGE.parent


def shipped(name: str) -> Path:
    """The folder ``name`` ("taxonomy" or "annotations"): the wheel's copy when installed, else the repository's."""
    bundled = PACKAGE / "bundled" / name
    return bundled if bundled.is_dir() else REPOSITORY / name
