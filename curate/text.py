"""Text normalisation and language detection, shared by every stage that looks at text."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# C0/C1 control characters except tab/newline; zero-width and BOM characters.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_NEWLINES = re.compile(r"\n{3,}")

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = r"\u3040-\u30ff"
_HANGUL = r"\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_HAN}{_KANA}{_HANGUL}]")
_KANA_CHAR = re.compile(f"[{_KANA}]")
_HANGUL_CHAR = re.compile(f"[{_HANGUL}]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")
_ENCODED = re.compile(r"(?:%[0-9A-Fa-f]{2})+|\b[0-9A-Fa-f]{16,}\b|[A-Za-z0-9+/]{40,}={0,2}")
_OTHER_LETTERS = re.compile(r"[^\W\d_A-Za-z\u00c0-\u024f" + _HAN + _KANA + _HANGUL + "]+")


# Languages py3langid may answer for non-CJK text: the languages of the safety sets we know (MultiJail's
# nine among them) and the most common others.
LANGID_LANGUAGES = ["en", "fr", "de", "es", "it", "pt", "nl", "ru", "uk", "pl", "tr", "ar", "fa", "he", "hi", "bn",
                    "th", "vi", "id", "ms", "jv", "sw", "sv", "da", "no", "fi", "cs", "el", "ro", "hu"]


# py3langid's cost grows with length; a few hundred characters settle the language of a prompt.
LANGID_PREFIX_CHARS = 400


def normalize(text: str) -> str:
    """Unicode NFKC, control characters removed, runs of spaces folded, at most one blank line, trimmed."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _NEWLINES.sub("\n\n", text).strip()


@lru_cache(maxsize=1)
def _langid():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    # Restricting the candidates removes rare-language false positives on short text.
    identifier.set_languages(LANGID_LANGUAGES)
    return identifier


def detect_lang(text: str) -> str:
    """ISO 639-1 code of the dominant language.

    Chinese, Japanese and Korean are told apart by script, weighting each CJK character like one Latin
    word, so a Chinese prompt with English terms in it ("帮我写一个 Python 脚本") is ``zh``. Other text
    goes to py3langid (a langid.py fork that ships its model). Empty or letterless text is ``und``.
    """
    text = _ENCODED.sub(" ", text)  # percent-encoding and long hex/base64 runs are not words of any language
    cjk = len(_CJK_CHAR.findall(text))
    latin_words = len(_LATIN_WORD.findall(text))
    if cjk and cjk >= latin_words:
        kana = len(_KANA_CHAR.findall(text))
        hangul = len(_HANGUL_CHAR.findall(text))
        if hangul > cjk / 2:
            return "ko"
        if kana and kana >= cjk / 5:
            return "ja"
        return "zh"
    if not latin_words and not _OTHER_LETTERS.search(text):
        return "und"
    lang, prob = _langid().classify(text[:LANGID_PREFIX_CHARS])
    if prob < 0.5 and text.isascii():
        return "en"  # a word or two of plain ASCII is too little evidence to leave English
    return lang
