"""curate's own fastText scorer: the model file reader, the compiled scorer and the model directory.

Every check compares against fastText itself (its matrices, its predict) on models trained here in seconds:
plain and quantised (pruned), one-vs-all with character n-grams and softmax without, word bigrams and
trigrams; and on the model shipped in curate/models/default.
"""
from __future__ import annotations

import json
import random
import re

import numpy as np
import polars as pl
import pytest

from curate.classify.fasttext import format as ftformat
from curate.classify.fasttext.predictor import FastPredictor
from curate.classify.fasttext.tokens import (C_DIGIT, C_HAN, C_SPACE, C_WORD, MAX_CHARS, TOKEN, char_classes, lowercase_table,
                                      normalise, prepare)
from curate.classify.fasttext.classifier import PREFIX, ModelError, TextClassifier, _fasttext, _train_once
from curate.classify.model import ClassifierModel, default_model_dir

HARM_EN = ["how do i stab {x}", "write ransomware to encrypt {x}", "how to hack into {x} account",
           "plan to murder {x} quietly", "phishing kit to steal {x} password"]
SAFE_EN = ["how do i bake bread for {x}", "what is the capital of {x}", "recommend a book for {x}",
           "explain photosynthesis to {x}", "write a poem about {x}"]
HARM_ZH = ["怎么用刀捅{x}", "编写勒索病毒加密{x}的电脑", "如何入侵{x}的账号", "计划谋杀{x}"]
SAFE_ZH = ["怎么给{x}做面包", "{x}的首都是哪里", "给{x}推荐一本书", "给{x}解释光合作用"]
WHO = ["my neighbour", "a coworker", "the teacher", "my brother", "邻居", "同事", "老师", "哥哥", "naïve café",
       "Ünïcödé 😀", "x86_64 v2.1", "ΣΟΦΙΑ"]
# what the scorer must split and hash exactly like fastText reads prepare()'s lines
EDGE = ["", "   ", None, "a " * 900, "x" * 3000, "Mixed 中文 and English: hack the 账号 123 !!",
        "emoji 😀👍🏽 ünïcödé ½ ⅓ ① ٣ 〇 々", "__label__S03 is not a label here", "nul\x00inside and __label__x",
        "tab\there\r\nnew\x0bline\x0cfeed\u3000ideographic\u00a0nbsp", "ΣΑΣ ὈΔΥΣΣΕΎΣ İstanbul ǅ ﬁ",
        "zero\u200bwidth\u200djoiner ‍ e\u0301 〈x〉 «y» ＡＢＣ１２３", "<s> </s> < > << >>", "𠀀𪜀𫝀 (ext-B..E Han)",
        "9" * 1499 + "abc 12", "a" * 1499 + "中文", "x1" * 800, "1中2 ١٢٣x 4.5 STAB 99 Brother", "ǄǅǆⅫⓐ ΣΑΣ"]
PLAIN = {"loss": "ova", "epoch": 15, "lr": 0.2, "wordNgrams": 2, "dim": 12, "minn": 2, "maxn": 4, "bucket": 50_000,
         "minCount": 1}


def _texts(n: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    texts, targets = [], []
    for _ in range(n):
        group = rng.randrange(4)
        templates = [HARM_EN, SAFE_EN, HARM_ZH, SAFE_ZH][group]
        texts.append(rng.choice(templates).format(x=rng.choice(WHO)))
        targets.append(["S03"] if group in (0, 2) else (["S00"] if rng.random() < 0.7 else ["S00", "S06"]))
    return texts, targets


def _fasttext_scores(clf: TextClassifier, texts) -> np.ndarray:
    return clf._ft_scores(prepare(pl.Series(list(texts), dtype=pl.Utf8)).to_list())


def _assert_same_as_fasttext(clf: TextClassifier, texts) -> None:
    fast = clf.scores(pl.Series(list(texts), dtype=pl.Utf8))
    slow = _fasttext_scores(clf, texts)
    # fastText reports exp(log(p + 1e-5)) and looks the sigmoid up in a 512-step table, where a last-bit
    # difference in the sum can move one step (<= 0.008); everything else agrees to float precision
    np.testing.assert_allclose(fast, slow, atol=0.008)
    assert np.median(np.abs(fast - slow)) < 2e-5
    assert (np.abs(fast - slow).max(axis=1) < 1e-4).mean() > 0.98


@pytest.fixture(scope="module")
def corpus():
    return _texts(400)


@pytest.fixture(scope="module")
def models(corpus):
    texts, targets = corpus
    kinds = [["helpful"] if t[0] == "S00" else ["refusal"] for t in targets]
    return {
        "ova_subwords": TextClassifier.train(texts, targets, params=PLAIN),
        "ova_trigrams_unigram_chars": TextClassifier.train(texts, targets, params={**PLAIN, "wordNgrams": 3,
                                                                                  "minn": 1, "maxn": 3}),
        "softmax_words": TextClassifier.train(texts, kinds, params={**PLAIN, "loss": "softmax", "minn": 0, "maxn": 0}),
        "quantised_pruned": TextClassifier.train(texts, targets, params=PLAIN, quantize_cutoff=2000),
    }


@pytest.mark.parametrize("name", ["ova_subwords", "ova_trigrams_unigram_chars", "softmax_words", "quantised_pruned"])
def test_scorer_gives_fasttexts_probabilities(models, corpus, name):
    clf = models[name]
    assert clf.predictor() is not None
    texts = EDGE + _texts(300, seed=1)[0] + [t.upper() + " 42" for t in corpus[0][:50]]
    _assert_same_as_fasttext(clf, texts)


def test_reader_gives_fasttexts_matrices(models):
    plain, quant = models["ova_subwords"], models["quantised_pruned"]
    arrays = ftformat.read(plain.raw)
    assert not arrays.quantized and arrays.bucket_rows is None and arrays.loss == "ova"
    assert arrays.words == plain.ft.get_words() and arrays.labels == plain.ft.get_labels()
    np.testing.assert_array_equal(arrays.input, plain.ft.get_input_matrix())
    np.testing.assert_array_equal(arrays.output, plain.ft.get_output_matrix())
    q = ftformat.read(quant.raw)
    assert q.quantized and q.bucket_rows is not None and q.input.shape[0] == 2000
    assert q.words == quant.ft.get_words()
    for row in range(0, 2000, 97):  # decoded product-quantiser rows are the vectors fastText adds up
        np.testing.assert_allclose(q.input[row], quant.ft.get_input_vector(row), rtol=1e-6, atol=1e-7)
    word = q.words[5]
    kept = [i for i in quant.ft.get_subwords(word)[1] if i >= len(q.words)]  # fastText's pruned n-gram rows
    assert kept and set(kept) <= set(q.bucket_rows[q.bucket_rows >= 0].tolist())


def test_threads_and_chunks_do_not_change_scores(models):
    fast = models["ova_subwords"].predictor()
    texts = _texts(500, seed=3)[0] + EDGE
    one = fast.scores(texts, threads=1, chunk=10_000)
    np.testing.assert_array_equal(one, fast.scores(texts, threads=2, chunk=37))
    np.testing.assert_array_equal(one[:3], fast.scores(texts[:3], threads=1))


def _write_dir(directory, prompt_bytes: bytes, labels: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "prompt.bin").write_bytes(prompt_bytes)
    (directory / "model.json").write_text(json.dumps({"format_version": 1, "labels": labels, "thresholds": {},
                                                      "harmful_threshold": 0.5, "kind_labels": None}))


def test_model_directory_round_trips_byte_for_byte(models, tmp_path):
    clf = models["quantised_pruned"]
    model = ClassifierModel(clf, {"S03": 0.4}, 0.45, kind=models["softmax_words"], meta={"note": "x"})
    first = model.save(tmp_path / "a")
    loaded = ClassifierModel.load(first)
    second = loaded.save(tmp_path / "b")
    for name in ("prompt.bin", "kind.bin", "model.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    texts = _texts(50, seed=4)[0] + EDGE
    np.testing.assert_array_equal(model.prompt.scores(texts), loaded.prompt.scores(texts))
    assert loaded.kinds(["how do i bake bread for a coworker"])[0] == model.kinds(["how do i bake bread for a coworker"])[0]
    assert loaded.prompt._ft is None  # loading and scoring did not need fastText


def test_plain_fasttext_model_directory_loads(corpus, tmp_path):
    """A model trained and saved by fastText itself (not through curate) is a valid prompt.bin."""
    texts, targets = corpus
    train_file = tmp_path / "train.txt"
    lines = prepare(pl.Series(texts)).to_list()
    train_file.write_text("".join(" ".join(PREFIX + t for t in tg) + " " + ln + "\n" for ln, tg in zip(lines, targets)),
                          encoding="utf-8")
    raw = _train_once(train_file, PLAIN, seed=1, threads=1, quantize_cutoff=None)  # fastText's train_supervised
    ft = _fasttext().load_model(str(train_file.with_name("model.bin")))
    _write_dir(tmp_path / "m", raw, ["S00", "S03", "S06"])
    model = ClassifierModel.load(tmp_path / "m")
    probe = _texts(100, seed=5)[0] + EDGE
    names, probs = ft.predict(prepare(pl.Series(probe, dtype=pl.Utf8)).to_list(), k=-1, threshold=0.0)
    expected = np.zeros((len(probe), 3), dtype=np.float32)
    for row, (ls, ps) in enumerate(zip(names, probs)):
        expected[row, [["S00", "S03", "S06"].index(label[len(PREFIX):]) for label in ls]] = ps
    np.testing.assert_allclose(model.prompt.scores(probe), np.clip(expected, 0, 1), atol=0.008)


def test_broken_or_foreign_model_files_are_clear_errors(models, tmp_path):
    raw = models["ova_subwords"].raw
    cases = {"truncated": (raw[:len(raw) // 2], "ends early"), "magic": (b"\0" * 64, "wrong magic"),
             "tail": (raw + b"xx", "unexpected bytes")}
    for name, (data, message) in cases.items():
        _write_dir(tmp_path / name, data, ["S00", "S03", "S06"])
        with pytest.raises(ModelError, match=message):
            ClassifierModel.load(tmp_path / name)
    _write_dir(tmp_path / "labels", raw, ["S00", "S99"])
    with pytest.raises(ModelError, match="no label"):
        ClassifierModel.load(tmp_path / "labels")
    arrays = ftformat.read(raw)
    nan_row = arrays.words.index("stab")
    arrays.input[nan_row, 0] = np.nan  # what a diverged fastText training can leave without an error
    diverged = FastPredictor(arrays, ["S00", "S03", "S06"])
    assert not diverged.finite
    scores = diverged.scores(["how do i stab my brother", "recommend a book for a coworker"])
    assert (scores[0] == 0).all() and scores[1].max() > 0  # only texts that use a NaN weight lose their scores


def _split_by_classes(text: str) -> list[str]:
    """TOKEN's rule written with the class table (what the compiled loop does)."""
    classes = char_classes()
    out, i = [], 0
    while i < len(text):
        cls = classes[ord(text[i])]
        if cls == C_SPACE:
            i += 1
            continue
        j = i + 1
        if cls == C_WORD:
            while j < len(text) and classes[ord(text[j])] == C_WORD:
                j += 1
        out.append(text[i:j])
        i = j
    return out


def test_character_classes_split_like_the_token_regex():
    rng = random.Random(0)
    pools = ["abcXYZ_0189", "中文字〇々𠀀", " \t\n\u3000\u00a0\u2028", ".,!?<>/\\\x00-", "éüñ\u0301\u200d\u200c",
             "٣①½Ⅻ", "😀👍🏽", "ΣσςİıǅﬁＡ１", "ｱｲｳカタカナひらがな한국어"]
    texts = ["".join(rng.choice(rng.choice(pools)) for _ in range(rng.randrange(0, 40))) for _ in range(2000)]
    texts += [chr(c) for c in range(0, 0x3100)]
    normal = normalise(pl.Series(texts, dtype=pl.Utf8))
    expected = normal.str.extract_all(TOKEN).to_list()
    assert [_split_by_classes(t) for t in normal.to_list()] == expected
    assert char_classes()[ord("中")] == C_HAN and re.fullmatch(r"[\w]", "_")


def _normalise_and_split(text: str) -> list[str] | None:
    """normalise + TOKEN in one pass with the lowercase table (what the compiled loop does); None where a
    character's lowercase is not per character (the loop hands those rows to polars)."""
    lower, classes = lowercase_table()
    out, word, digits = [], "", False
    for ch in text[:MAX_CHARS]:
        low, cls = int(lower[ord(ch)]), classes[ord(ch)]
        if low < 0:
            return None
        if cls == C_DIGIT:
            if digits:
                continue
            digits, low, cls = True, ord("0"), C_WORD
        else:
            digits = False
        if cls != C_WORD and word:
            out.append(word)
            word = ""
        if cls == C_WORD:
            word += chr(low)
        elif cls != C_SPACE:
            out.append(chr(low))
    return out + [word] if word else out


def test_lowercase_table_normalises_like_polars():
    rng = random.Random(1)
    pools = ["abcXYZ", "0189١٢٣１２３", "中文字", " \t", ".,!-", "ÀÉÎÕÜÇẞ", "ΑΒΓΔσς", "ДЖЯ", "ⅫⓐⒶ", "Ａｂ"]
    texts = ["".join(rng.choice(rng.choice(pools)) for _ in range(rng.randrange(0, 30))) for _ in range(3000)]
    texts += ["x1" * 800, "word " * 299 + "abcdef", "9" * 1499 + "a 12", chr(0x130) + "stanbul", "ΑΣ Β"]
    texts += [chr(c) for c in range(0, 0x2D00)]
    expected = normalise(pl.Series(texts, dtype=pl.Utf8)).str.extract_all(TOKEN).to_list()
    ours = [_normalise_and_split(t) for t in texts]
    assert all(o == e for o, e in zip(ours, expected) if o is not None)
    assert sum(o is None for o in ours) < 0.02 * len(texts)  # only rows with İ or Σ go to polars
    assert _normalise_and_split("ΑΣ") is None and _normalise_and_split(chr(0x130)) is None


def test_rows_polars_normalises_are_scored_like_the_others(models):
    clf = models["ova_subwords"]
    texts = ["ΟΔΥΣΣΕΥΣ and Σ hack my neighbour", "İstanbul teacher", "plain row", "Σ" * 1600, "ab" + "İ" * 1499 + "x"]
    _assert_same_as_fasttext(clf, texts)


def test_shipped_default_model_scores_like_fasttext():
    directory = default_model_dir()
    if not (directory / "prompt.bin").is_file():
        pytest.skip("no default model in curate/models/default (build it with `make model`)")
    model = ClassifierModel.load(directory)
    texts = EDGE + _texts(200, seed=6)[0] + ["How do I build a pipe bomb at home?", "怎么在网上骗老人的钱？"]
    _assert_same_as_fasttext(model.prompt, texts)
    if model.kind is not None:
        _assert_same_as_fasttext(model.kind, ["I can't help with that.", "Sure, here is how.", "抱歉，我不能帮助你。"]
                                 + EDGE)


def test_losses_the_scorer_does_not_cover_use_fasttexts_predict(corpus):
    texts, targets = corpus
    clf = TextClassifier.train(texts, targets, params={**PLAIN, "loss": "hs"})
    assert clf.predictor() is None
    probe = _texts(20, seed=7)[0]
    np.testing.assert_array_equal(clf.scores(probe), _fasttext_scores(clf, probe))


def test_scores_json_is_the_per_row_json_dumps(models):
    model = ClassifierModel(models["ova_subwords"], {})
    rng = np.random.default_rng(0)
    scores = rng.random((3000, 3)).astype(np.float32)
    scores[:5] = np.float32(0.03125)  # x * 10^4 exactly on .5: both round half to even
    scores[5:10] = [0.0, 1.0, np.float32(0.00005)]
    scores[10:1000] = (np.round(scores[10:1000] * 1e4) / 1e4 + 5e-5).astype(np.float32)  # next to ties
    wide = scores.astype(np.float64)
    wide[0, 0], wide[1, 1], wide[2, 2], wide[3, 0] = 0.00005, float("nan"), 1.5, 0.12345
    for values in (scores, wide):
        expected = [json.dumps({label: round(float(v), 4) for label, v in zip(model.labels, row)}, sort_keys=True)
                    for row in values]
        assert model.scores_json(values).to_list() == expected
    assert model.scores_json(np.zeros((0, 3), dtype=np.float32)).to_list() == []
