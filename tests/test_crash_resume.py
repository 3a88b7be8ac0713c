"""SIGKILL at random moments, then resume: the result equals an uninterrupted run (fast seeds; make chaos runs more)."""
from pathlib import Path

from tests.chaos.crash_resume import crash_and_resume, small_pipeline
from tests.fixtures.openai_server import _openai_server_session, openai_server  # noqa: F401

QUICKSTART = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "quickstart"


def test_killed_runs_resume_to_the_same_output(tmp_path, openai_server):  # noqa: F811
    openai_server.latency = 0.02
    sources = [{"preset": p, "path": str(QUICKSTART / p)} for p in ("xstest", "xsafety", "star1", "gsm8k")]
    pipeline = small_pipeline(tmp_path / "p.yaml", sources, [
        {"synthesize": {"base_url": openai_server.base_url, "model": "chaos", "concurrency": 4}},
        {"balance": {"seed": 3}}, {"export": {}}])
    figures = crash_and_resume(pipeline, tmp_path, seeds=[1], env={"OPENAI_API_KEY": "x"})
    assert figures.kills >= 3, figures  # most stages were really killed mid-way, not after they finished
    assert figures.rows_lost == 0 and figures.rows_duplicated == 0, figures
    assert figures.resumed_equal == figures.resumes == 4, figures.notes
    assert figures.stray_temp_outputs == 0 and figures.inconsistent_manifests == 0, figures
