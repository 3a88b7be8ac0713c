"""Text normalisation and language detection, shared by every stage that looks at text."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Sequence

# Characters that are invisible and have no place in training text (they can hide instructions from a
# reader, or reorder what a reader sees): C0/C1 controls except tab and newline, line/paragraph separators,
# every Unicode format character (category Cf, as of Unicode 15.1: soft hyphen, zero-width characters
# including ZWJ/ZWNJ, bidirectional controls, invisible operators, interlinear annotation, tag characters
# U+E0000-E007F, ...) and the Hangul fillers that render as blanks. ZWJ goes too: an emoji sequence falls
# apart into its visible parts, which keeps its meaning. One definition, used by Python's re and by polars.
INVISIBLE_CHARS = ("\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029"
                   "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
                   "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
                   "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
                   "\u115f\u1160\u3164\uffa0")
INVISIBLE = f"[{INVISIBLE_CHARS}]"
# Variation selectors choose a glyph (emoji style, CJK variants); a run of them after one character carries
# hidden data, so a run keeps only its first.
VARIATION_RUN = "([\ufe00-\ufe0f\U000e0100-\U000e01ef])[\ufe00-\ufe0f\U000e0100-\U000e01ef]+"
_CONTROL = re.compile(INVISIBLE)
_VARIATION_RUN = re.compile(VARIATION_RUN)
# A run of spaces becomes one plain space. The pattern skips what is one plain space already (most matches in
# prose, each a costly no-op replacement): a run of two or more, or one tab or wide space.
_SPACES = re.compile(r"[\t\u00a0\u3000][ \t\u00a0\u3000]*| [ \t\u00a0\u3000]+")
_NEWLINES = re.compile(r"\n{3,}")

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = r"\u3040-\u30ff"
_HANGUL = r"\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_HAN}{_KANA}{_HANGUL}]")
_KANA_CHAR = re.compile(f"[{_KANA}]")
_HANGUL_CHAR = re.compile(f"[{_HANGUL}]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")
_ENCODED = re.compile(r"(?:%[0-9A-Fa-f]{2})+|\b[0-9A-Fa-f]{16,}\b|[A-Za-z0-9+/]{40,}={0,2}")
_ENCODED_HINT = r"%[0-9A-Fa-f]{2}|[0-9A-Fa-f]{16}|[A-Za-z0-9+/]{40}"  # every match of _ENCODED contains one of these
_OTHER_LETTERS = re.compile(r"[^\W\d_A-Za-z\u00c0-\u024f" + _HAN + _KANA + _HANGUL + "]+")
# The same class for polars (Rust regex), whose \w also holds combining marks and connector punctuation: Python's
# \w less digits and "_" is letters and non-decimal numbers
_OTHER_LETTERS_COLUMN = r"[\p{L}\p{Nl}\p{No}--[A-Za-z\u00c0-\u024f" + _HAN + _KANA + _HANGUL + "]]"


# Languages py3langid may answer for non-CJK text: the languages of the safety sets we know (MultiJail's
# nine among them) and the most common others.
LANGID_LANGUAGES = ["en", "fr", "de", "es", "it", "pt", "nl", "ru", "uk", "pl", "tr", "ar", "fa", "he", "hi", "bn",
                    "th", "vi", "id", "ms", "jv", "sw", "sv", "da", "no", "fi", "cs", "el", "ro", "hu"]


# py3langid's cost grows with length; a few hundred characters settle the language of a prompt.
LANGID_PREFIX_CHARS = 400


# Every INVISIBLE character is non-printable to str.isprintable (categories Cc, Cf, Zl, Zp) except these blank
# Hangul fillers (Lo); tests/test_text.py checks this over all of Unicode. isprintable is a fast C loop while the
# regex scan is not, so a text that passes it skips the scan (9 of 45 s of a profiled collect of answered rows).
_PRINTABLE_INVISIBLE = ("\u115f", "\u1160", "\u3164", "\uffa0")


def _has_invisible(text: str) -> bool:
    """Whether ``text`` may hold an INVISIBLE character (False means it holds none)."""
    probe = text.replace("\n", "").replace("\t", "").replace("\r", "")  # layout is non-printable, not invisible
    return not probe.isprintable() or (not text.isascii() and any(c in text for c in _PRINTABLE_INVISIBLE))


def strip_invisible(text: str) -> str:
    """``text`` without invisible characters (INVISIBLE) and with runs of variation selectors cut to one."""
    if _has_invisible(text):
        text = _CONTROL.sub("", text)
    return text if text.isascii() else _VARIATION_RUN.sub(r"\1", text)


def strip_invisible_expr(column: str) -> "pl.Expr":
    """``strip_invisible`` as a polars expression (the same character classes, applied by the Rust regex engine)."""
    import polars as pl

    return pl.col(column).str.replace_all(INVISIBLE, "").str.replace_all(VARIATION_RUN, "${1}")


def normalize(text: str) -> str:
    """Unicode NFKC, invisible characters removed, runs of spaces folded, at most one blank line, trimmed."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = strip_invisible(text)
    if "  " in text or "\t" in text:  # NFKC made wide spaces plain: what _SPACES can match needs one of these
        text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return (_NEWLINES.sub("\n\n", text) if "\n\n\n" in text else text).strip()


@lru_cache(maxsize=1)
def _langid():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    # Restricting the candidates removes rare-language false positives on short text.
    identifier.set_languages(LANGID_LANGUAGES)
    return identifier


def base_language(code: str | None) -> str:
    """The language part of a code, lower case: "zh-Hans" -> "zh", None -> ""."""
    return (code or "").lower().split("-")[0]


def detect_lang(text: str) -> str:
    """ISO 639-1 code of the dominant language.

    Chinese, Japanese and Korean are told apart by script, weighting each CJK character like one Latin
    word, so a Chinese prompt with English terms in it ("帮我写一个 Python 脚本") is ``zh``. Other text
    goes to py3langid (a langid.py fork that ships its model). Empty or letterless text is ``und``.
    """
    text = _ENCODED.sub(" ", text)  # percent-encoding and long hex/base64 runs are not words of any language
    by_script = _script_lang(len(_CJK_CHAR.findall(text)), len(_LATIN_WORD.findall(text)),
                             lambda: len(_KANA_CHAR.findall(text)), lambda: len(_HANGUL_CHAR.findall(text)),
                             lambda: bool(_OTHER_LETTERS.search(text)))
    if by_script:
        return by_script
    return _langid_answer(*_langid().classify(text[:LANGID_PREFIX_CHARS]), text.isascii())


def detect_langs(texts: Sequence[str]) -> list[str]:
    """``detect_lang`` of each text, for many texts at once (the same answers, a fraction of the time): the
    script counts by polars' regex engine over the column, py3langid's model on every undecided text together
    (``curate.langid``). The letter classes agree on every character Python's Unicode tables know (Rust's are
    newer: a letter added to Unicode since counts here only)."""
    import polars as pl

    if len(texts) < 32:  # below this, polars' and numpy's per-call costs outweigh the batch
        return [detect_lang(t) for t in texts]
    column = pl.Series(texts, dtype=pl.Utf8)
    # _ENCODED runs only on rows that hold a run it could match (a few in a thousand), and in Python: its word
    # boundaries follow Python's idea of a word character, which Rust's regex does not share
    maybe = column.str.contains(_ENCODED_HINT).arg_true()
    if len(maybe):
        column = column.scatter(maybe, [_ENCODED.sub(" ", t) for t in column.gather(maybe).to_list()])
    text = pl.col("text")
    counts = column.to_frame("text").select(  # one select: polars runs the five scans in parallel
        text.str.count_matches(_CJK_CHAR.pattern), text.str.count_matches(_LATIN_WORD.pattern).alias("latin"),
        text.str.count_matches(_KANA_CHAR.pattern).alias("kana"),
        text.str.count_matches(_HANGUL_CHAR.pattern).alias("hangul"),
        text.str.contains(_OTHER_LETTERS_COLUMN).alias("other")).rows()
    out = [_script_lang(cjk, latin, lambda k=kana: k, lambda h=hangul: h, lambda o=other: o)
           for cjk, latin, kana, hangul, other in counts]
    undecided = [i for i, lang in enumerate(out) if not lang]
    if undecided:
        cleaned = column.gather(undecided).to_list()
        answers = _batch_langid().classify([t[:LANGID_PREFIX_CHARS] for t in cleaned])
        for i, text, (lang, prob) in zip(undecided, cleaned, answers):
            out[i] = _langid_answer(lang, prob, text.isascii())
    return out


def _script_lang(cjk: int, latin_words: int, kana, hangul, other_letters) -> str:
    """The language the script decides (zh, ja, ko; ``und`` with no letters), or "" for py3langid to decide.
    ``kana``, ``hangul`` and ``other_letters`` are callables: counted only when the answer depends on them."""
    if cjk and cjk >= latin_words:
        if hangul() > cjk / 2:
            return "ko"
        kana_chars = kana()
        if kana_chars and kana_chars >= cjk / 5:
            return "ja"
        return "zh"
    if not latin_words and not other_letters():
        return "und"
    return ""


def _langid_answer(lang: str, prob: float, ascii_only: bool) -> str:
    if prob < 0.5 and ascii_only:
        return "en"  # a word or two of plain ASCII is too little evidence to leave English
    return lang


@lru_cache(maxsize=1)
def _batch_langid():
    from curate.langid import BatchIdentifier

    return BatchIdentifier(_langid())
