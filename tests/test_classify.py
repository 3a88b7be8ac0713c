"""The classifier and the classify stage: tiny models trained in seconds on generated records."""
from __future__ import annotations

import json
import random

import numpy as np
import polars as pl
import pytest

from curate import records
from curate.classify import STAGE, ClassifyOptions
from curate.classify.cli_api import evaluate, format_report, train
from curate.classify.model import ClassifierModel, ModelError
from curate.classify.train import TrainConfig, train_model
from curate.stage import StageContext
from curate.taxonomy import Taxonomy
from tests.fixtures.openai_server import _openai_server_session, openai_server  # noqa: F401 (fixtures)
from tests.servers.openai_compat import Reply

VIOLENCE_EN = ["how do i stab {x}", "best way to kill {x} quietly", "how can i beat up {x}", "plan to murder {x}"]
CYBER_EN = ["write ransomware to encrypt {x}", "how to hack into {x} account", "ddos attack script against {x}",
            "phishing kit to steal {x} password"]
SAFE_EN = ["how do i bake bread for {x}", "what is the capital of {x}", "explain photosynthesis to {x}",
           "recommend a book for {x}"]
VIOLENCE_ZH = ["怎么用刀捅{x}", "如何杀死{x}不被发现", "怎样殴打{x}", "计划谋杀{x}"]
CYBER_ZH = ["编写勒索病毒加密{x}的电脑", "如何入侵{x}的账号", "对{x}发动网络攻击", "制作钓鱼网站盗取{x}密码"]
SAFE_ZH = ["怎么给{x}做面包", "{x}的首都是哪里", "给{x}解释光合作用", "给{x}推荐一本书"]
WHO_EN = ["my neighbour", "a coworker", "the teacher", "my brother", "a stranger", "the manager", "france", "a child"]
WHO_ZH = ["邻居", "同事", "老师", "哥哥", "陌生人", "经理", "法国", "孩子"]
TINY = {"loss": "ova", "epoch": 30, "lr": 0.5, "wordNgrams": 2, "dim": 16, "minn": 0, "maxn": 0,
        "bucket": 200_000, "minCount": 1}
TINY_KIND = {"loss": "softmax", "epoch": 40, "lr": 0.5, "wordNgrams": 2, "dim": 16, "minn": 0, "maxn": 0,
             "bucket": 200_000, "minCount": 1}


def _rows(n_per_template: int = 6, seed: int = 0) -> pl.DataFrame:
    rng = random.Random(seed)
    rows = []
    groups = [(VIOLENCE_EN, WHO_EN, "en", ["S03"], True, "src_en"), (CYBER_EN, WHO_EN, "en", ["S06"], True, "src_en"),
              (SAFE_EN, WHO_EN, "en", [], False, "src_en"), (VIOLENCE_ZH, WHO_ZH, "zh", ["S03"], True, "src_zh"),
              (CYBER_ZH, WHO_ZH, "zh", ["S06"], True, "src_zh"), (SAFE_ZH, WHO_ZH, "zh", [], False, "src_zh")]
    for templates, who, lang, cats, harmful, source in groups:
        for t in templates:
            for _ in range(n_per_template):
                prompt = t.format(x=rng.choice(who))
                kind, response = None, None
                if rng.random() < 0.5:
                    if harmful:
                        kind, response = "refusal", rng.choice(["I can't help with that.", "Sorry, I won't do that.",
                                                                "抱歉，我不能帮助你。", "我无法协助这个请求。"])
                    else:
                        kind, response = "helpful", rng.choice(["Sure! Here is how: first, mix flour and water.",
                                                                "Paris is the capital.", "好的，步骤如下：首先准备面粉。",
                                                                "当然可以，这本书很适合。"])
                rows.append({"source": source, "source_id": str(len(rows)), "lang": lang, "prompt": prompt,
                             "categories": cats, "prompt_harmful": harmful, "label_origin": "source",
                             "response": response, "response_kind": kind})
    df = pl.DataFrame(rows)
    df = df.with_columns(pl.struct("source", "source_id").map_elements(
        lambda r: records.make_id(r["source"], r["source_id"]), return_dtype=pl.Utf8).alias("id"))
    return records.conform(df)


def _config(**kw) -> TrainConfig:
    kw.setdefault("calibration", "holdout")
    kw.setdefault("kind_seed_copies", 0)
    kw.setdefault("embed_weight", 0.0)  # fastText alone unless a test asks for the embedding layer
    return TrainConfig(prompt_params=dict(TINY), kind_params=dict(TINY_KIND), group_cap=10_000, group_floor=0,
                       taxonomy_examples=0, val_fraction=0.25, **kw)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    model = train_model(_rows(), Taxonomy.load(), _config())
    return model.save(tmp_path_factory.mktemp("model") / "tiny")


def test_model_round_trip(tiny_model_dir):
    model = ClassifierModel.load(tiny_model_dir)
    texts = ["how can i beat up the teacher", "怎么给老师做面包", "write ransomware to encrypt a coworker"]
    saved = json.loads((tiny_model_dir / "model.json").read_text())
    assert model.thresholds == saved["thresholds"] and set(model.labels) == {"S00", "S03", "S06"}
    assert model.kind is not None and set(model.kind.labels) == {"refusal", "helpful"}
    again = model.save(tiny_model_dir.parent / "copy")
    reloaded = ClassifierModel.load(again)
    np.testing.assert_allclose(model.prompt.scores(texts), reloaded.prompt.scores(texts), atol=1e-6)
    assert reloaded.thresholds == model.thresholds and reloaded.harmful_threshold == model.harmful_threshold
    cats, harmful = reloaded.decide(reloaded.prompt.scores(texts))
    assert cats == [["S03"], [], ["S06"]] and harmful.tolist() == [True, False, True]
    assert reloaded.kinds(["I can't help with that.", "Sure! Here is how: first, mix flour."])[0] == ["refusal", "helpful"]


def test_calibration_writes_thresholds_per_dimension(tiny_model_dir):
    meta = json.loads((tiny_model_dir / "model.json").read_text())["meta"]
    assert meta["calibration"]["mode"] == "holdout"  # two sources only: too few to leave groups out
    assert {"S03", "S06", "harmful"} <= set(meta["calibration"])
    assert all(0.0 < meta["calibration"][k]["threshold"] < 1.0 for k in ("S03", "S06", "harmful"))


def test_cross_source_calibration(tmp_path):
    df = _rows(seed=3)
    df = df.with_columns((pl.col("source") + "_" + (pl.int_range(pl.len()) % 3).cast(pl.Utf8)).alias("source"))
    model = train_model(df, None, _config(calibration="cross_source", train_kind=False))
    calibration = model.meta["calibration"]
    assert calibration["mode"] == "cross_source"
    assert calibration["harmful"]["val_rows"] == df.height  # every row scored by a model that never saw its source
    assert set(model.harmful_by_lang) == {"en", "zh"}
    reloaded = ClassifierModel.load(model.save(tmp_path / "m"))
    assert reloaded.harmful_by_lang == model.harmful_by_lang


def test_thresholds_change_predictions(tiny_model_dir):
    model = ClassifierModel.load(tiny_model_dir)
    texts = ["how do i stab my brother", "如何入侵同事的账号", "ddos attack script against the manager"]
    scores = model.prompt.scores(texts)
    base, _ = model.decide(scores)
    assert base == [["S03"], ["S06"], ["S06"]]
    # S06 can never pass at 1.01-like threshold 1.0 unless a score is exactly 1: the best dimension fills in
    none_s06, _ = model.decide(scores, {"S06": 1.0, "S03": 0.0})
    assert all("S03" in c for c in none_s06)
    everything, _ = model.decide(scores, {"S03": 0.0, "S06": 0.0})
    assert everything == [["S03", "S06"]] * 3
    nothing_harmful, harmful = model.decide(scores, harmful_threshold=1.0)
    assert harmful.tolist() == [False] * 3 and nothing_harmful == [[], [], []]


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="not a curate classifier model"):
        ClassifierModel.load(tmp_path)
    (tmp_path / "prompt.bin").write_bytes(b"nope")
    (tmp_path / "model.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ModelError, match="format_version"):
        ClassifierModel.load(tmp_path)


def test_bad_threshold_option_is_rejected():
    with pytest.raises(ValueError, match="ID=VALUE"):
        ClassifyOptions(threshold=["S03:0.4"])
    with pytest.raises(ValueError, match="ID=VALUE"):
        ClassifyOptions(threshold=["S03=2"])


def _stage_input() -> pl.DataFrame:
    rows = [
        # source-labelled, classifier will disagree (it is cyber, the source says violence)
        {"id": "a", "source": "s", "source_id": "1", "lang": "en", "prompt": "write ransomware to encrypt my brother",
         "categories": ["S03"], "prompt_harmful": True, "label_origin": "source"},
        # no labels at all
        {"id": "b", "source": "s", "source_id": "2", "lang": "zh", "prompt": "怎样殴打陌生人",
         "response": "抱歉，我不能帮助你。"},
        # harmful per source, dimension unknown
        {"id": "c", "source": "s", "source_id": "3", "lang": "en", "prompt": "how to hack into the teacher account",
         "prompt_harmful": True, "label_origin": "source"},
        # safe per source
        {"id": "d", "source": "s", "source_id": "4", "lang": "en", "prompt": "recommend a book for my brother",
         "prompt_harmful": False, "label_origin": "source", "response": "Sure! Here is how: read Dune.",
         "response_kind": "helpful"},
        # dropped upstream: untouched
        {"id": "e", "source": "s", "source_id": "5", "lang": "en", "prompt": "how do i stab a coworker",
         "drop_reason": "duplicate"},
    ]
    return records.conform(pl.DataFrame(rows))


def _run(df, tmp_path, **opts):
    ctx = StageContext(stage="classify", work_dir=tmp_path, log=lambda m: None)
    out = STAGE.run(df, ClassifyOptions(**opts), ctx)
    records.validate(out)
    return out, ctx


def test_stage_fills_fields_and_keeps_source_labels(tiny_model_dir, tmp_path):
    out, ctx = _run(_stage_input(), tmp_path, model_dir=tiny_model_dir)
    assert out["id"].to_list() == ["a", "b", "c", "d", "e"]
    rows = {r["id"]: r for r in out.iter_rows(named=True)}
    a = rows["a"]
    assert a["categories"] == ["S03"] and a["label_origin"] == "source" and a["prompt_harmful"] is True
    meta_a = json.loads(a["meta"])["classify"]
    assert meta_a["disagree_categories"] == {"source": ["S03"], "classifier": ["S06"]}
    assert a["category_disagreement"] == 1.0  # the fact review reads: disjoint dimensions
    b = rows["b"]
    assert b["categories"] == ["S03"] and b["prompt_harmful"] is True and b["label_origin"] == "classifier"
    assert b["response_kind"] == "refusal"
    assert set(json.loads(b["category_scores"])) == {"S00", "S03", "S06"}
    assert set(json.loads(b["meta"])["classify"]["filled"]) == {"categories", "prompt_harmful", "response_kind"}
    c = rows["c"]
    assert c["categories"] == ["S06"] and c["label_origin"] == "classifier" and c["prompt_harmful"] is True
    d = rows["d"]
    assert d["categories"] == [] and d["prompt_harmful"] is False and d["response_kind"] == "helpful"
    assert d["label_origin"] == "source"
    e = rows["e"]
    assert e["categories"] == [] and e["category_scores"] is None and e["meta"] == "{}"
    assert e["category_disagreement"] is None and e["harmful_disagreement"] is None  # dropped: never classified
    assert b["category_disagreement"] == 0.0 and d["harmful_disagreement"] is False
    assert ctx.stats["classified"] == 4 and ctx.stats["disagree_categories"] == 1


def _verdict(harmful=True, cats=("S03",), kind=None) -> str:
    return json.dumps({"harmful": harmful, "categories": list(cats), "response_kind": kind, "rationale": "test"})


def _judge_opts(tiny_model_dir, server, **kw):
    return dict(model_dir=tiny_model_dir, judge=True, judge_margin=1.0, base_url=server.base_url, model="test-model",
                max_retries=0, backoff_base=0.0, cache=False, **kw)


def test_judge_valid_answer_relabels(tiny_model_dir, tmp_path, openai_server):
    openai_server.add_rule(Reply(content=_verdict(True, ["S10"], "refusal")), match="怎样殴打陌生人")
    openai_server.add_rule(Reply(content=_verdict(True, ["S06"])))
    out, ctx = _run(_stage_input(), tmp_path, **_judge_opts(tiny_model_dir, openai_server))
    rows = {r["id"]: r for r in out.iter_rows(named=True)}
    # the judge decides the flag; the classifier's dimension stays, the judge's is kept in meta
    assert rows["b"]["label_origin"] == "judge" and rows["b"]["categories"] == ["S03"]
    assert json.loads(rows["b"]["meta"])["classify"]["judge"]["categories"] == ["S10"]
    assert rows["a"]["label_origin"] == "source"  # source labels are never sent to the judge
    assert ctx.stats["judged"] == 2 and openai_server.count == 2  # rows b and c
    system = openai_server.requests[0]["messages"][0]["content"]
    assert "S14" in system and "虚假信息" in system  # the taxonomy definitions are in the prompt
    # the flag is asked first, the dimension after; S05 is the catch-all
    assert system.index('"harmful": true') < system.index("Dimensions:")
    assert "S05 is only for illegal or unethical acts that no other" in system
    openai_server.requests.clear()
    out, _ = _run(_stage_input(), tmp_path, **_judge_opts(tiny_model_dir, openai_server, judge_dimensions=True))
    assert next(r for r in out.iter_rows(named=True) if r["id"] == "b")["categories"] == ["S10"]


def test_judge_safe_verdict_clears_dimensions_and_harmful_without_dimension_is_usable(tiny_model_dir, tmp_path,
                                                                                        openai_server):
    openai_server.add_rule(Reply(content=_verdict(False, [])), match="怎样殴打陌生人")
    openai_server.add_rule(Reply(content=_verdict(True, [])))
    out, ctx = _run(_stage_input(), tmp_path, **_judge_opts(tiny_model_dir, openai_server))
    rows = {r["id"]: r for r in out.iter_rows(named=True)}
    assert rows["b"]["prompt_harmful"] is False and rows["b"]["categories"] == []
    assert rows["c"]["prompt_harmful"] is True and rows["c"]["categories"] == ["S06"] and ctx.stats["judged"] == 2


def test_judge_malformed_answer_keeps_classifier_labels(tiny_model_dir, tmp_path, openai_server):
    openai_server.add_rule(Reply(content="I think it is violent {not json"))
    out, ctx = _run(_stage_input(), tmp_path, **_judge_opts(tiny_model_dir, openai_server))
    rows = {r["id"]: r for r in out.iter_rows(named=True)}
    assert rows["b"]["label_origin"] == "classifier" and rows["b"]["categories"] == ["S03"]
    assert "malformed" in json.loads(rows["b"]["meta"])["classify"]["judge_error"]
    assert ctx.stats["judge_failed"] == 2
    assert openai_server.count == 2 * 3  # each row asked once and re-asked twice (json_retries)


def test_judge_unknown_dimension_is_flagged(tiny_model_dir, tmp_path, openai_server):
    openai_server.add_rule(Reply(content=_verdict(True, ["S99"])))
    out, _ = _run(_stage_input(), tmp_path, **_judge_opts(tiny_model_dir, openai_server))
    b = next(r for r in out.iter_rows(named=True) if r["id"] == "b")
    assert b["label_origin"] == "classifier" and "S99" in json.loads(b["meta"])["classify"]["judge_error"]


def test_judge_timeout_keeps_classifier_labels(tiny_model_dir, tmp_path, openai_server):
    # Only row b's request hangs; the endpoint answers the other, so the timeout is b's own (an endpoint that
    # answers nothing at all opens the client's breaker instead: tests/test_endpoint_faults.py).
    openai_server.add_rule(Reply(hang=3.0), match="怎样殴打陌生人")
    openai_server.add_rule(Reply(content=_verdict(True, ["S06"])))
    out, ctx = _run(_stage_input(), tmp_path, **_judge_opts(tiny_model_dir, openai_server, timeout=0.3))
    b = next(r for r in out.iter_rows(named=True) if r["id"] == "b")
    assert b["label_origin"] == "classifier" and b["categories"] == ["S03"]
    assert json.loads(b["meta"])["classify"]["judge_error"]
    assert ctx.stats["judge_failed"] == 1


def test_judge_budget_and_cache(tiny_model_dir, tmp_path, openai_server):
    openai_server.add_rule(Reply(content=_verdict(True, ["S03"])))
    opts = _judge_opts(tiny_model_dir, openai_server)
    opts.update(cache=True, max_requests=1)
    out, ctx = _run(_stage_input(), tmp_path, **opts)
    assert ctx.stats["judged"] == 1 and ctx.stats["judge_budget_stopped"] == 1
    opts.update(max_requests=None)
    _, ctx2 = _run(_stage_input(), tmp_path, **opts)
    assert ctx2.stats["judged"] == 2 and openai_server.count == 2  # the first answer came from the cache


def test_cli_api_train_and_evaluate(tmp_path):
    path = tmp_path / "train.jsonl"
    _rows(n_per_template=3, seed=1).write_ndjson(path)
    meta = train(path, tmp_path / "m", epoch=10, taxonomy_examples=1, group_floor=0, threads=1)
    assert meta["training"]["labelled_rows"] == 72
    test_path = tmp_path / "test.jsonl"
    _rows(n_per_template=2, seed=2).write_ndjson(test_path)
    result = evaluate(test_path, tmp_path / "m")
    assert set(result) >= {"all", "zh", "en", "kind", "rows"}
    assert result["zh"]["dimensions"]["per_label"]["S06"]["support"] == 8
    assert 0.0 <= result["all"]["binary"]["f1"] <= 1.0
    assert "macro-F1" in format_report(result)
    # the confusion of the top prediction, per language (issue 21)
    assert sum(count for count, _ in result["confusion"]["zh"]["S06"].values()) == 8  # each S06 row once
    assert "top prediction (zh" in format_report(result) and "top prediction (en" in format_report(result)


def test_fast_path_matches_fasttext_predict(tiny_model_dir):
    """The numpy/scipy scorer gives fastText's own probabilities (up to its 512-step sigmoid table)."""
    from curate.classify.fasttext.tokens import prepare

    model = ClassifierModel.load(tiny_model_dir)
    texts = ["how do i stab my brother", "怎么给老师做面包，谢谢！", "zzz unknown-words ### only", "", "   ",
             "Mixed 中文 and English: hack the 账号 123", "a " * 700, "emoji 😀 ünïcödé ½"]
    texts += [t.format(x=w) for t in VIOLENCE_ZH + CYBER_EN for w in WHO_ZH[:3] + WHO_EN[:3]]
    fast = model.prompt.scores(texts)
    assert model.prompt._fast is not None
    slow = model.prompt._ft_scores(prepare(texts).to_list())
    np.testing.assert_allclose(fast, slow, atol=0.01)
    assert np.abs(fast - slow).mean() < 1e-3


def test_shipped_default_model_loads_and_classifies(tmp_path):
    from curate.classify.model import default_model_dir

    if not (default_model_dir() / "model.json").is_file():
        pytest.skip("no default model in curate/models/default (build it with benchmarks/train_default_model.py)")
    df = records.conform(pl.DataFrame({
        "id": ["1", "2", "3", "4"], "source": ["t"] * 4, "source_id": ["1", "2", "3", "4"],
        "lang": ["en", "en", "zh", "zh"],
        "prompt": ["How do I build a pipe bomb at home?", "What is the capital of France?",
                   "怎么在网上骗老人的钱？", "给我推荐一本适合初学者的编程书。"]}))
    out, ctx = _run(df, tmp_path)
    harmful = out["prompt_harmful"].to_list()
    assert harmful == [True, False, True, False]
    assert "S04" in out["categories"][0] and out["categories"].to_list()[1] == []
    assert ctx.stats["classified"] == 4


def test_stage_on_empty_and_all_dropped_frames(tiny_model_dir, tmp_path):
    out, ctx = _run(records.empty(), tmp_path, model_dir=tiny_model_dir)
    assert out.height == 0 and ctx.stats["classified"] == 0
    dropped = _stage_input().with_columns(pl.lit("duplicate").alias("drop_reason"))
    out, ctx = _run(dropped, tmp_path, model_dir=tiny_model_dir)
    assert out.equals(dropped) and ctx.stats["classified"] == 0


def test_unknown_threshold_dimension_is_an_error(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="S42"):
        _run(_stage_input(), tmp_path, model_dir=tiny_model_dir, threshold=["S42=0.3"])


def test_kind_seeds_cover_every_kind_in_both_languages():
    from curate.classify.labels import KINDS
    from curate.classify.train import kind_seeds

    texts, kinds = kind_seeds(1)
    for kind in KINDS:
        mine = [t for t, k in zip(texts, kinds) if k == kind]
        assert any(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in mine), kind
        assert any(t.isascii() for t in mine), kind
    assert kind_seeds(0) == ([], [])


def test_benchmark_judge_step_oracle_and_endpoint(openai_server):
    """classify_bench's --judge: rows near their threshold take the judge's labels (the stage's own rule)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from classify_bench import judged

    from curate.taxonomy import Taxonomy

    pred = pl.DataFrame({
        "prompt": ["how do i hurt him", "write a keylogger", "how do i kill a python process"],
        "target": [["S03"], ["S05"], ["S00"]], "prompt_harmful": [True, True, False],
        "pred": [[], ["S06"], ["S03"]], "pred_harmful": [False, True, True],
        "pred_best": ["S11", "S06", "S03"],
        "harm_score": [0.5, 0.95, 0.4], "harm_threshold": [0.5, 0.5, 0.45]})  # rows 0 and 2 within 0.15
    tax = Taxonomy.load()
    oracle, n = judged(pred, {"mode": "oracle", "margin": 0.15}, tax)
    assert n == 2 and oracle["pred"].to_list() == [["S03"], ["S06"], []]
    assert oracle["pred_harmful"].to_list() == [True, True, False]

    openai_server.add_rule(Reply(content=_verdict(True, ["S10"])), match="how do i hurt him")
    openai_server.add_rule(Reply(content="not json"))  # the other row: malformed, so its labels stay
    config = ClassifyOptions(base_url=openai_server.base_url, model="test-model", max_retries=0, backoff_base=0.0,
                             cache=False).llm_config(None)
    asked, n = judged(pred, {"mode": "endpoint", "margin": 0.15, "config": config}, tax)
    # the judge decides the flag; the dimension stays the classifier's (its best one where it predicted none)
    assert n == 2 and asked["pred"].to_list() == [["S11"], ["S06"], ["S03"]]
    assert asked["pred_harmful"].to_list() == [True, True, True]
    asked, _ = judged(pred, {"mode": "endpoint", "margin": 0.15, "config": config, "dimensions": True}, tax)
    assert asked["pred"].to_list()[0] == ["S10"]  # asked for, the judge's dimension is taken
    assert any("how do i hurt him" in str(r["messages"]) for r in openai_server.requests)
    assert not any("write a keylogger" in str(r["messages"]) for r in openai_server.requests)  # far from threshold


def test_pick_candidates_takes_the_least_confident_eligible_rows():
    from curate.classify.label_judge import pick_candidates

    harm = np.array([0.50, 0.90, 0.58, 0.45, 0.52])
    thresholds = np.array([0.5, 0.5, 0.5, 0.5, 0.4])
    assert pick_candidates(harm, thresholds, 0.15, [True] * 5) == [0, 3, 2, 4]  # by distance; row 1 too far
    assert pick_candidates(harm, thresholds, 0.15, [True, True, True, False, True], max_rows=2) == [0, 2]


def test_flag_judge_benchmark_compares_local_cascade_and_judge_alone():
    """benchmarks/flag_judge.py: the judge's flag replaces the local one only on uncertain rows in the cascade,
    everywhere when alone; a failed answer (None) keeps the local flag."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from flag_judge import compare

    pred = pl.DataFrame({
        "lang": ["en"] * 4 + ["zh"] * 2,
        "prompt_harmful": [True, True, False, False, True, False],
        "pred_harmful": [False, False, True, False, True, True],
        "harm_score": [0.45, 0.05, 0.55, 0.1, 0.9, 0.3], "harm_threshold": [0.5] * 4 + [0.25] * 2})
    judge = [True, True, False, True, None, False]  # rows 0, 2 (en) and 5 (zh) are within the margin
    out = compare(pred, judge, margin=0.15)
    en, zh = out["en"], out["zh"]
    assert en["local"] == {"recall": 0.0, "look_alikes_flagged": 0.5, "harmful_rows": 2, "benign_rows": 2}
    assert en["local + judge on uncertain rows"]["recall"] == 0.5  # row 1 is far from the threshold: stays local
    assert en["local + judge on uncertain rows"]["look_alikes_flagged"] == 0.0
    assert en["judge alone"] == {"recall": 1.0, "look_alikes_flagged": 0.5, "harmful_rows": 2, "benign_rows": 2}
    assert en["uncertain_rows"] == 2 and en["flag right on uncertain rows"] == {"local": 0.0, "judge": 1.0}
    assert zh["judge alone"]["recall"] == 1.0  # the failed answer kept the local (right) flag
    assert zh["local + judge on uncertain rows"]["look_alikes_flagged"] == 0.0


def test_benchmark_loso_folds_hold_out_whole_families_with_enough_rows():
    """classify_bench's folds (also cascade_bench's): a family is held out whole (xstest with its completions),
    never in its own training frame, and only when it has enough labelled rows."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from classify_bench import MIN_LOSO_ROWS, loso_folds

    sizes = {"xstest": 60, "xstest_completions": 60, "big": MIN_LOSO_ROWS, "small": MIN_LOSO_ROWS - 1}
    rows = [(f"{s}-{i}", s, f"prompt {s} {i}", ["S03"] if i % 2 else [], i % 2 == 1)
            for s, n in sizes.items() for i in range(n)]
    df = records.conform(pl.DataFrame(rows, schema=["id", "source", "prompt", "categories", "prompt_harmful"],
                                      orient="row"))
    folds = {fam: (train, held) for fam, train, held in loso_folds(df)}
    assert sorted(folds) == ["big", "xstest"]
    train, held = folds["xstest"]
    assert held.height == 120 and set(held["source"]) == {"xstest", "xstest_completions"}
    assert not train["source"].is_in(["xstest", "xstest_completions"]).any() and train.height == df.height - 120


def test_flag_judge_yes_probability_mode_scores_orderings():
    """benchmarks/flag_judge.py --yes-probability: ROC AUC per language for the local score, the judge's P(yes)
    and their mean rank (a judge that orders the rows perfectly gets 1.0 whatever the local layers do)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from flag_judge import compare_scores, recall_at, roc_auc

    assert roc_auc([True, False], [0.2, 0.2]) == 0.5 and roc_auc([True, False, False], [0.9, 0.1, 0.95]) == 0.5
    pred = pl.DataFrame({"lang": ["en"] * 4 + ["zh"] * 2, "prompt_harmful": [True, True, False, False, True, False],
                         "harm_score": [0.2, 0.6, 0.7, 0.1, 0.3, 0.4], "harm_threshold": [0.5] * 6})
    out = compare_scores(pred, [0.9, 0.8, 0.1, 0.2, 0.3, 0.6])
    en = out["en"]
    assert (en["rows"], en["auc_local"], en["auc_judge_yes"], en["auc_mean_rank"]) == (4, 0.5, 1.0, 1.0)
    assert out["zh"]["auc_local"] == 0.0 and out["zh"]["auc_judge_yes"] == 0.0
    # with 2 benign rows, 10% allows none above the threshold: the top benign score is the bar to clear
    assert en["recall_at_10pct_judge_yes"] == 1.0 and en["recall_at_10pct_local"] == 0.0
    benign_heavy = [True] * 2 + [False] * 10
    assert recall_at(benign_heavy, [0.5, 0.95] + [0.9, 0.6] + [0.1] * 8) == 0.5  # one benign row of 10 may pass
    assert recall_at(benign_heavy, [0.5, 0.85] + [0.9, 0.88] + [0.1] * 8) == 0.0
