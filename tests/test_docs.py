"""The README is a short front door and every relative link in the docs resolves (file and #anchor)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")


def documents() -> list[Path]:
    """README.md, everything under docs/, and the model card (the docs link into it)."""
    return [README, *sorted((REPO / "docs").rglob("*.md")), REPO / "curate" / "models" / "MODEL_CARD.md"]


def prose_lines(text: str, *, keep_code: bool = False) -> list[str]:
    """Lines outside fenced code blocks; inline code removed unless ``keep_code`` (a link shown as code is not a
    link, but a heading's code is part of its anchor)."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line if keep_code else INLINE_CODE.sub("", line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading anchors on its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(path.read_text(encoding="utf-8"), keep_code=True):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """Every relative link in ``path`` that points at no file, or at an anchor the target does not have."""
    problems = []
    for number, line in enumerate(prose_lines(path.read_text(encoding="utf-8")), 1):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ... not checked offline
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                problems.append(f"{path.relative_to(REPO)}: {target}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor.lower() not in anchors(resolved):
                problems.append(f"{path.relative_to(REPO)}: {target}: no heading with that anchor")
    return problems


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert path.is_file(), f"{path} is missing"
    assert broken_links(path) == []


def test_the_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("tests.test_docs.REPO", tmp_path)
    (tmp_path / "other.md").write_text("# Real heading\n\n## `curate run` and more\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#real-heading) [ok too](other.md#curate-run-and-more) [self](#top)\n"
                    "# Top\n[gone](missing.md) [bad anchor](other.md#nowhere) [web](https://example.org/x)\n"
                    "```\n[in code](not-checked.md)\n```\n`[inline](not-checked-either.md)`\n", encoding="utf-8")
    assert broken_links(page) == ["page.md: missing.md: no such file",
                                  "page.md: other.md#nowhere: no heading with that anchor"]


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; depth belongs in docs/"
    first = "\n".join(lines[:60])
    assert "make quickstart" in first and "make test" in first, "the two set-up commands must be near the top"


def test_every_stage_has_a_usage_page_linked_from_the_readme() -> None:
    from curate.stage import STAGE_MODULES

    readme = README.read_text(encoding="utf-8")
    for stage in [*STAGE_MODULES, "report"]:
        assert (REPO / "docs" / "stages" / f"{stage}.md").is_file(), f"docs/stages/{stage}.md is missing"
        assert f"(docs/stages/{stage}.md)" in readme, f"README.md does not link docs/stages/{stage}.md"
