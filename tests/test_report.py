"""The run report renders in a real browser with every section and image, and the notebook executes."""
import base64
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from curate.report import write_report

SECTIONS = ["funnel", "dimensions", "balance", "lengths", "duplicates", "classifier", "synthesis", "review", "samples"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    return path


def render(html: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, html.as_uri()],
                          capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("rror" in line or "Uncaught" in line)]


@pytest.mark.browser
def test_console_error_detection_works(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>throw new Error('planted failure')</script></body></html>")
    proc = render(page, tmp_path, "--dump-dom")
    assert any("planted failure" in line for line in console_errors(proc.stderr)), proc.stderr[-2000:]


@pytest.mark.browser
def test_report_renders_every_section_and_image_without_console_errors(quickstart_run, tmp_path, artifacts_dir):
    from PIL import Image

    html = write_report(quickstart_run)
    text = html.read_text(encoding="utf-8")
    # self-contained: nothing is fetched from the network (a row may quote a URL as text: a STAR-1 answer does)
    fetched = re.findall(r"""(?:src|href|action|poster)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//"""
                         r"|@import", text, re.I)
    assert fetched == [], fetched
    dom = render(html, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    for key in SECTIONS:
        assert re.search(rf"<section id=\"?'?{key}", dom.stdout), f"section {key} missing from the rendered page"
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', dom.stdout)
    assert len(images) >= 5
    for data in images:
        width, height = Image.open(io.BytesIO(base64.b64decode(data))).size
        assert width > 100 and height > 100
    shot = artifacts_dir / "report.png"
    proc = render(html, tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", "--hide-scrollbars")
    assert proc.returncode == 0 and shot.stat().st_size > 10_000
    md = html.with_suffix(".md").read_text(encoding="utf-8")
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (html.parent / name).is_file(), f"Markdown report links a missing image: {name}"


def test_report_counts_match_the_run(quickstart_run):
    from curate.report.data import load_run
    from curate.report.render import build_sections

    data = load_run(quickstart_run)
    funnel = next(s for s in build_sections(data) if s.key == "funnel")
    assert f"{data.manifests[0]['rows_out']:,} records collected" in funnel.text
    assert "Totals add up." in funnel.text
    assert [row[0] for row in funnel.table[1]] == [m["stage"] for m in data.manifests]


def test_notebook_executes_against_the_quickstart_run(quickstart_run):
    import nbformat
    from nbclient import NotebookClient

    path = Path(__file__).resolve().parents[1] / "notebooks" / "explore_run.ipynb"
    nb = nbformat.read(path, as_version=4)
    os.environ["CURATE_RUN_DIR"] = str(quickstart_run)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.pop("CURATE_RUN_DIR", None)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
