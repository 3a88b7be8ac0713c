"""What a raw field value may be before it becomes part of a record; anything else quarantines its line.

Sources are untrusted: a prompt may arrive as a number, a list, an object, NaN, bytes or a string that is
not valid Unicode, and a label or language field in any shape. Nothing is turned into text by ``str()``:
the repr of a Python object never becomes a prompt, a label or a language.
"""
from __future__ import annotations

import math
import re
from typing import Any

from curate.text import normalize

# A language is a short code (ISO 639 with optional subtags: en, zh, zh-hans, pt-br): it lands in report
# Markdown and card YAML, so nothing else gets through.
LANG_CODE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8}){0,3}$")
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_ID_CHARS = 512


class BadValue(ValueError):
    """A field value that cannot be used; the message is the quarantine reason."""


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float) and not math.isfinite(value):
        return f"a number ({value})"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "binary data"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _valid_unicode(text: str, field: str) -> str:
    if _SURROGATE.search(text):
        raise BadValue(f"{field} is not valid Unicode (lone surrogate)")
    return text


def text_value(value: Any, field: str) -> str | None:
    """A text field, normalised; None stays None. Anything but a string is a BadValue."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadValue(f"{field} is not text but {kind_of(value)}")
    return normalize(_valid_unicode(value, field))


def id_value(value: Any, field: str = "id") -> str:
    """A row id: a string or an integer (ids are often numbers), short enough to read."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadValue(f"{field} is not a string or an integer but {kind_of(value)}")
    text = value if isinstance(value, str) else (str(value) if abs(value) < 10 ** MAX_ID_CHARS else "")
    if not text.strip() or len(text) > MAX_ID_CHARS:
        raise BadValue(f"{field} is empty or longer than {MAX_ID_CHARS} characters")
    return _valid_unicode(text, field)


def label_values(value: Any, field: str) -> list[str]:
    """Source labels from one field: a string, a number or a boolean, or a flat list of those; missing values
    (None, NaN, empty strings) give none. Nested lists and objects are a BadValue."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if item is None or (isinstance(item, float) and math.isnan(item)):
            continue
        if isinstance(item, float) and not math.isfinite(item):
            raise BadValue(f"label field {field!r} holds {kind_of(item)}")
        if not isinstance(item, (str, int, float)):  # bool is an int
            raise BadValue(f"label field {field!r} holds {kind_of(item)}, expected text or a list of text")
        text = _valid_unicode(str(item), f"label field {field!r}").strip()
        if text:
            out.append(text)
    return out


def lang_value(value: Any) -> str:
    """A language code from a source field, lower-cased (``zh_CN`` -> ``zh-cn``)."""
    if not isinstance(value, str):
        raise BadValue(f"language is not text but {kind_of(value)}")
    code = value.strip().lower().replace("_", "-")
    if not LANG_CODE.match(code):
        raise BadValue(f"language {value[:40]!r} is not a language code (like en, zh, pt-br)")
    return code
