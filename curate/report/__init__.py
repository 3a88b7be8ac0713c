"""report: one self-contained HTML page (and a Markdown twin) that shows a run at a glance."""
from __future__ import annotations

from pathlib import Path

from curate.report.data import load_run
from curate.report.render import build_sections, to_html, to_markdown
from curate.store import RunStore, atomic_path


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` and ``report.md`` (+ ``report_files/*.png``) for a run; returns the HTML path."""
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    html_path = Path(out) if out else RunStore.existing(run_dir).report_path
    html_path.parent.mkdir(parents=True, exist_ok=True)
    sections = build_sections(data)
    title = f"curate run report: {run_dir.name}"
    with atomic_path(html_path) as tmp:
        tmp.write_text(to_html(sections, title), encoding="utf-8")
    image_dir = html_path.with_name(html_path.stem + "_files")
    image_dir.mkdir(exist_ok=True)
    for section in sections:
        for name, png in section.images:
            (image_dir / name).write_bytes(png)
    md_path = html_path.with_suffix(".md")
    with atomic_path(md_path) as tmp:
        tmp.write_text(to_markdown(sections, title, image_dir.name), encoding="utf-8")
    return html_path
