"""Add eval results to a curate export's dataset card (README.md): a section between markers, so adding
again replaces it, plus the per-dimension charts in the export's images/ folder."""
from __future__ import annotations

import re
from pathlib import Path

from curate.eval import results
from curate.eval.view import dimension_chart, markdown
from curate.store import atomic_path

BEGIN, END = "<!-- curate-eval:begin -->", "<!-- curate-eval:end -->"
IMAGES = "images"


def add_to_card(export_dir: Path, result_dirs: list[Path]) -> Path:
    """Write (or replace) the card's evaluation section; returns the card's path."""
    export_dir = Path(export_dir)
    card = export_dir / "README.md"
    if not card.is_file() or not (export_dir / "data").is_dir():
        raise results.ResultError(f"{export_dir}: not a curate export folder (no README.md + data/)")
    parts = [BEGIN, "# Evaluation", ""]
    for folder in map(Path, result_dirs):
        summary, _ = results.load(folder)
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.name)
        parts.append(markdown(summary, title=f"{folder.name}: {summary.get('model')}"))
        png = dimension_chart(summary)
        if png is not None:
            (export_dir / IMAGES).mkdir(exist_ok=True)
            (export_dir / IMAGES / f"eval-{name}.png").write_bytes(png)
            parts.append(f"![defence rate per dimension, {folder.name}]({IMAGES}/eval-{name}.png)\n")
    parts.append(END)
    section = "\n".join(parts)
    text = card.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
    with atomic_path(card) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return card
