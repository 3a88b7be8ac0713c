"""The reviewer guidelines as one formatted HTML page for Label Studio's Instructions window.

Rendered at push time from ``annotations/GUIDELINES.<lang>.md`` (Markdown, sanitised by ``render``): the
content warnings first (each file's leading blockquote), then the hotkeys exactly as the labeling config binds
them (``label_config.hotkeys``), then the guidelines in the reviewer's language, then the other language.
"""
from __future__ import annotations

import re
from pathlib import Path

from curate.review import label_config as lc
from curate.review.render import escape, markdown_html
from curate.taxonomy import Taxonomy

LANGUAGES = ("en", "zh")
_LEADING_QUOTE = re.compile(r"\A\s*((?:>[^\n]*\n?)+)")
_HEADINGS = {"en": {"title": "Hotkeys", "key": "Key", "action": "Action"},
             "zh": {"title": "快捷键", "key": "按键", "action": "作用"}}


def guideline_files(root: Path | None = None) -> dict[str, Path]:
    root = root or lc.default_config_path().parent
    return {lang: root / f"GUIDELINES.{lang}.md" for lang in LANGUAGES if (root / f"GUIDELINES.{lang}.md").exists()}


def split_warning(markdown: str) -> tuple[str, str]:
    """(the leading blockquote without its ``>`` marks, the rest): the warning is shown first, on its own."""
    match = _LEADING_QUOTE.match(markdown)
    if not match:
        return "", markdown
    quote = "\n".join(line[1:].lstrip() if line.startswith(">") else line for line in match.group(1).splitlines())
    return quote.strip(), markdown[match.end():]


def _hotkey_table(taxonomy: Taxonomy, order: list[str]) -> str:
    rows = "".join(
        f"<tr><td><kbd>{escape(key)}</kbd></td>" + "".join(f"<td>{escape(t)}</td>" for t in
                                                           (en if lang == 'en' else zh for lang in order)) + "</tr>"
        for key, en, zh in lc.hotkeys(taxonomy))
    head = "<tr><th>" + escape(" / ".join(_HEADINGS[lang]["key"] for lang in order)) + "</th>" + \
           "".join(f"<th>{escape(_HEADINGS[lang]['action'])}</th>" for lang in order) + "</tr>"
    return f'<table class="curate-hotkeys" style="border-collapse: collapse">{head}{rows}</table>'


def instructions_html(reviewer_lang: str = "en", taxonomy: Taxonomy | None = None,
                      root: Path | None = None) -> str:
    """The whole page; the reviewer's language comes first (``en`` or ``zh``)."""
    if reviewer_lang not in LANGUAGES:
        raise ValueError(f"reviewer language {reviewer_lang!r}: choose one of {', '.join(LANGUAGES)}")
    taxonomy = taxonomy or Taxonomy.load()
    files = guideline_files(root)
    order = [reviewer_lang] + [lang for lang in LANGUAGES if lang != reviewer_lang]
    parts = {lang: split_warning(files[lang].read_text(encoding="utf-8")) for lang in order if lang in files}
    warnings = "".join(f'<div lang="{lang}">{markdown_html(parts[lang][0], hard_breaks=False)}</div>' for lang in order
                       if lang in parts and parts[lang][0])
    hotkey_titles = " / ".join(_HEADINGS[lang]["title"] for lang in order)
    bodies = "".join(f'<section lang="{lang}">{markdown_html(parts[lang][1], hard_breaks=False)}</section><hr/>'
                     for lang in order if lang in parts)
    return (f'<div class="curate-guidelines">'
            f'<div class="curate-content-warning" style="border: 2px solid #c77800; background: #fff4e0; '
            f'padding: 8px 12px; margin-bottom: 12px">{warnings}</div>'
            f"<h2>{escape(hotkey_titles)}</h2>{_hotkey_table(taxonomy, order)}<hr/>{bodies}</div>")
