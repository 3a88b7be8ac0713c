"""benchmarks/million.py keeps working: the same script `make bench` runs on 1M rows, here on 20k.

Classify runs with fastText alone (--embed-band 0) to keep the test short; the figures are not asserted
(speed lives in the benchmark), only that the run completes and accounts for every row.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.shared_data


def test_million_script_on_20k_rows(shared_data, repo, tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(repo / "benchmarks" / "million.py"), "--rows", "20000",
                           "--embed-band", "0", "--work", str(tmp_path), "--json", str(out),
                           "--plot", str(tmp_path / "plot.png")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = json.loads(out.read_text())
    stages = figures["stages"]
    assert list(stages) == ["collect", "dedup", "classify", "balance", "export"]
    assert stages["collect"]["rows_out"] == 20000 and all(s["seconds"] > 0 for s in stages.values())
    assert figures["peak_rss_mb"] > 0 and (tmp_path / "plot.png").stat().st_size > 0
    for name in ("collect", "dedup", "classify", "balance", "export", "total"):
        assert any(line.startswith(name) for line in done.stdout.splitlines()), name
    card = (tmp_path / "run-20000" / "export" / "README.md").read_text(encoding="utf-8")
    assert "prompt set awaiting synthesis" in card
    assert "export: 5,000 prompts" in done.stdout  # balance selected the prompts before synthesis


@pytest.mark.dask
def test_million_script_runs_both_engines_in_one_run(shared_data, repo, tmp_path):
    pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'curate[dask]'")
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(repo / "benchmarks" / "million.py"), "--rows", "5000",
                           "--embed-band", "0", "--engine", "dask", "--workers", "2", "--shard-rows", "1000",
                           "--work", str(tmp_path), "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["equal"] is True
    assert figures["local"]["engine"] == "local" and figures["local"]["peak_rss_mb_per_worker"] == []
    assert figures["dask"]["engine"] == "dask" and len(figures["dask"]["peak_rss_mb_per_worker"]) == 2
    for engine in ("local", "dask"):
        assert figures[engine]["stages"]["collect"]["rows_out"] == 5000
        assert f"engine {engine}" in done.stdout
    assert "outputs of every stage equal (every column of every row): yes" in done.stdout
