"""The fast part of `make chaos` runs in the test suite, so the script never rots and its zero-loss claims hold."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_chaos_fast_sections_lose_and_duplicate_nothing(tmp_path):
    out = tmp_path / "chaos.json"
    proc = subprocess.run([sys.executable, "benchmarks/chaos.py", "--fast", "--sections", "hostile,endpoint,disk",
                           "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["hostile"]["crashes"] == 0 and report["hostile"]["rows lost"] == 0
    assert report["hostile"]["bad inputs tried"] >= 10
    endpoint = report["endpoint"]
    assert endpoint["rows lost"] == 0 and endpoint["rows duplicated"] == 0
    assert endpoint["requests failed and recovered"] > 0  # the failures really happened
    assert endpoint["partial answers in cache"] == 0 and endpoint["budget respected"]
    assert "rows lost 0, rows duplicated 0" in proc.stdout


def test_chaos_userdata_section_loses_and_leaks_nothing(tmp_path):
    out = tmp_path / "chaos.json"
    proc = subprocess.run([sys.executable, "benchmarks/chaos.py", "--sections", "userdata", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = json.loads(out.read_text())["userdata"]
    assert figures["cases tried"] >= 13 and figures["cases passed"] == figures["cases tried"], figures["failures"]
    assert figures["user files lost"] == 0 and figures["secrets written"] == 0
    assert "user files lost 0, secrets written 0" in proc.stdout
