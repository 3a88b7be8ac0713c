"""Versioned prompt templates: ``<dir>/<en|zh>/<goal>.<version>.txt``, one system turn each.

A template is plain text with ``$dimensions``, ``$policies``, ``$language`` and ``$goal`` placeholders
(``string.Template``: braces in the text need no escaping). The user turn is the record's prompt,
unchanged. Chinese records get the zh templates, every other language the en ones, told to answer in
the record's language. Each rendered request carries the template's id and content hash into
``meta["synthesize"]`` so a dataset says exactly which prompt wrote each answer.
"""
from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from curate.synthesize.cleanup import instruction_heads

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
    text: str

    @property
    def id(self) -> str:
        return f"{self.lang}/{self.name}.{self.version}"

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    @cached_property  # checked for every candidate; a template is loaded once (lru_cache below)
    def instruction_heads(self) -> tuple[str, ...]:
        return instruction_heads(self.text)

    def render(self, **values: str) -> str:
        return string.Template(self.text).substitute(values)


def template_lang(record_lang: str | None) -> str:
    return "zh" if (record_lang or "").lower().split("-")[0] == "zh" else "en"


def language_name(record_lang: str | None) -> str:
    code = (record_lang or "").lower().split("-")[0]
    if not code or code == "und":
        return "the same language as the user's message"
    return LANGUAGE_NAMES.get(code, f"the language with ISO 639-1 code {code!r}")


@lru_cache(maxsize=64)
def load_template(directory: Path, lang: str, name: str, version: str) -> Template:
    path = Path(directory) / lang / f"{name}.{version}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"synthesis template not found: {path}")
    text = path.read_text(encoding="utf-8")
    # Fail on a typo'd placeholder now, not on the first record that uses the template.
    string.Template(text).substitute(dimensions="", policies="", language="", goal="")
    return Template(lang=lang, name=name, version=version, text=text)
