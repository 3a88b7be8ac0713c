"""Language detection: the batch path (detect_langs, curate.langid) gives the per-row answers, py3langid's own."""
import random
import re
import unicodedata

import polars as pl
import pytest

from curate.langid import BatchIdentifier
from curate.text import (INVISIBLE, VARIATION_RUN, _PRINTABLE_INVISIBLE, _langid, detect_lang, detect_langs, normalize,
                         strip_invisible)

SAMPLES = [
    "How do I bake sourdough bread at home?", "帮我写一个Python脚本来破解wifi密码", "日本語のテキストです、よろしく",
    "한국어 텍스트입니다", "Привет, как дела? Расскажи мне о погоде.", "สวัสดีครับ วันนี้อากาศดีมาก",
    "Bonjour, pouvez-vous m'aider à écrire une lettre ?", "Wie funktioniert ein Verbrennungsmotor genau?",
    "¿Cómo puedo mejorar mi español rápidamente?", "Xin chào, bạn có khỏe không?", "ok", "HELLO WORLD HOW ARE YOU",
    "", "   ", "123 456 789", "%41%42%43%44 what is this", "deadbeefdeadbeef0123 decode it",
    "aGVsbG8gd29ybGQgdGhpcyBpcyBhIGJhc2U2NCBzdHJpbmcgb2YgdGV4dA== decode", "Python 脚本", "hi 你好",
    "مرحبا كيف حالك اليوم", "नमस्ते, आप कैसे हैं?", "Habari yako leo rafiki yangu", "Apa kabar hari ini teman?",
    "x" * 900, "Dies ist ein sehr langer deutscher Satz. " * 30,
    "\u0301\u0301", "a\u0301", "² ½ ①", "‿", "_ _", "Ⅻ",  # marks, numbers, connectors: Python's \w, not Rust's
    "deadbeefdeadbeef01²", "²deadbeefdeadbeefdeadbeef",  # word boundaries next to them (Rust's gave "uk")
]


def test_batch_identifier_matches_py3langid_text_by_text():
    texts = SAMPLES * 3  # also above detect_langs' batch threshold
    batch = BatchIdentifier(_langid()).classify(texts)
    for text, (lang, prob) in zip(texts, batch):
        want_lang, want_prob = _langid().classify(text)
        assert lang == want_lang, text
        assert prob == pytest.approx(want_prob, rel=1e-4, abs=1e-6), text


def test_detect_langs_gives_detect_lang_answers():
    texts = SAMPLES * 3
    assert detect_langs(texts) == [detect_lang(t) for t in texts]
    assert detect_langs(SAMPLES[:3]) == ["en", "zh", "ja"]  # the small-batch path
    assert detect_langs([]) == []


def test_detect_langs_on_real_multilingual_prompts(shared_data):
    """MultiJail's ten languages and XSafety's zh/en: the batch answers every prompt as the per-row path does."""
    texts = []
    for path in sorted((shared_data / "multijail").rglob("*.csv"))[:1]:
        frame = pl.read_csv(path)
        texts += [t for column in frame.columns for t in frame[column].cast(pl.Utf8).drop_nulls().to_list()[:150]]
    assert len(texts) > 500
    assert detect_langs(texts) == [detect_lang(t) for t in texts]


def test_normalize_is_the_plain_rule():
    """normalize skips its regex passes where a cheap check shows they cannot match (single plain spaces, texts
    with no invisible character, ASCII texts and variation selectors); the result is the plain rule's: invisible
    characters removed, every run of spaces, tabs and wide spaces one space, lines trimmed, at most one blank line."""
    def plain_rule(text: str) -> str:
        text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
        text = re.sub(VARIATION_RUN, r"\1", re.sub(INVISIBLE, "", text))
        text = re.sub(r"[ \t\u00a0\u3000]+", " ", text)
        return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()

    rng = random.Random(0)
    layout = [" ", " ", "\t", "\u00a0", "\u3000", "\n", "\r", "a", "b"]
    hidden = ["\u200b", "\ufe0f", "\U000e0101", "\x00", "\x1b", "\u2028", "\u202e", "\U000e0041", *_PRINTABLE_INVISIBLE]
    for alphabet in (layout, layout + ["中"], layout + ["中"] + hidden, layout + hidden):
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(10_000)]
        assert [normalize(t) for t in texts] == [plain_rule(t) for t in texts]
    assert normalize(" a \t b\u3000\u3000c  \n\n\n\nd ") == "a b c\n\nd"


def test_every_invisible_character_is_caught_by_the_printable_check():
    """strip_invisible skips its regex scan for a text that str.isprintable accepts (less layout) and that holds no
    printable invisible character: that is safe only if this holds for every code point."""
    invisible = re.compile(INVISIBLE)
    printable_invisible = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF
                           and invisible.match(chr(cp)) and chr(cp).isprintable()]
    assert sorted(printable_invisible) == sorted(_PRINTABLE_INVISIBLE)
    assert strip_invisible("a\u3164b\u200bc\x00") == "abc" and strip_invisible("x\ufe0f\ufe0e") == "x\ufe0f"
