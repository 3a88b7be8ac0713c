"""Versioned prompt templates: ``<dir>/<en|zh>/<goal>.<version>.txt``, one system turn each.

A template is plain text with ``$dimensions``, ``$policies``, ``$language`` and ``$goal`` placeholders
(``string.Template``: braces in the text need no escaping). It may open with a YAML front matter between two
``---`` lines: what the shape grammar forces (the fields of ``curate.llm.reasoning.Shape``; llama.cpp only); the
content hash covers it. The user turn is the record's prompt, unchanged. Chinese records get the zh templates,
every other language the en ones, told to answer in the record's language. Each rendered request carries the
template's id and content hash into ``meta["synthesize"]`` so a dataset says exactly which prompt wrote each answer.
"""
from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, fields
from functools import cached_property, lru_cache
from pathlib import Path

import yaml

from curate.errors import UsageError
from curate.llm.reasoning import Shape
from curate.synthesize.cleanup import instruction_heads
from curate.text import base_language

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "templates" / "synthesize"
GOALS = ("refusal", "safe_completion", "helpful")

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "fr": "French", "de": "German", "es": "Spanish",
                  "it": "Italian", "pt": "Portuguese", "ru": "Russian", "ja": "Japanese", "ko": "Korean",
                  "ar": "Arabic", "th": "Thai", "vi": "Vietnamese", "bn": "Bengali", "sw": "Swahili",
                  "jv": "Javanese", "id": "Indonesian", "nl": "Dutch", "tr": "Turkish", "pl": "Polish"}


@dataclass(frozen=True)
class Template:
    lang: str  # "en" or "zh": the template's own language
    name: str  # goal or "judge"
    version: str
    text: str  # the whole file, front matter included: what the sha covers
    body: str  # the system turn (the text without its front matter)
    shape: Shape = Shape()  # what the shape grammar forces for this template (its front matter)

    @property
    def id(self) -> str:
        return f"{self.lang}/{self.name}.{self.version}"

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    @cached_property  # checked for every candidate; a template is loaded once (lru_cache below)
    def instruction_heads(self) -> tuple[str, ...]:
        return instruction_heads(self.body)

    def render(self, **values: str) -> str:
        return string.Template(self.body).substitute(values)


def template_lang(record_lang: str | None) -> str:
    return "zh" if base_language(record_lang) == "zh" else "en"


def language_name(record_lang: str | None) -> str:
    code = base_language(record_lang)
    if not code or code == "und":
        return "the same language as the user's message"
    return LANGUAGE_NAMES.get(code, f"the language with ISO 639-1 code {code!r}")


@lru_cache(maxsize=64)
def load_template(directory: Path, lang: str, name: str, version: str) -> Template:
    path = Path(directory) / lang / f"{name}.{version}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"synthesis template not found: {path}")
    text = path.read_text(encoding="utf-8")
    front, body = split_front_matter(text, path)
    # Fail on a typo'd placeholder now, not on the first record that uses the template.
    string.Template(body).substitute(dimensions="", policies="", language="", goal="")
    return Template(lang=lang, name=name, version=version, text=text, body=body, shape=_shape(front, path))


def _shape(front: dict, path: Path) -> Shape:
    unknown = set(front) - {f.name for f in fields(Shape)}
    if unknown:
        raise UsageError(f"{path}: unknown front matter keys {sorted(unknown)}")
    try:
        return Shape(reasoning_lead=str(front.get("reasoning_lead") or ""),
                     reply_leads=tuple(str(x) for x in front.get("reply_leads") or ()),
                     reply_min_chars=int(front.get("reply_min_chars") or 1),
                     max_reasoning_chars=int(front.get("max_reasoning_chars") or 0) or None,
                     one_paragraph=bool(front.get("one_paragraph", False)))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{path}: bad front matter value ({exc})") from None


_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def split_front_matter(text: str, path: Path) -> tuple[dict, str]:
    """(front matter as a dict, the rest) of a template file; no front matter: ({}, text)."""
    m = _FRONT.match(text)
    if not m:
        return {}, text
    try:
        front = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: the front matter is not YAML ({exc})") from None
    if not isinstance(front, dict):
        raise UsageError(f"{path}: the front matter must be a YAML mapping")
    return front, text[m.end():]
