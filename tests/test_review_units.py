"""Review stage pieces that need no server: agreement figures, sampling, merge rules, the labeling config."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import polars as pl
import pytest

from curate import records
from curate.review import label_config as lc
from curate.review.agreement import agreement, cohen_kappa, fleiss_kappa, percent_agreement
from curate.review.merge import decide_task, merge
from curate.review.sampling import confidence, disagreements, select, stratum, uncertainty
from curate.review.stage import ReviewOptions, run
from curate.stage import StageContext
from curate.taxonomy import Taxonomy

HARM = Taxonomy.load().harm_ids


# --- agreement -------------------------------------------------------------------------------------------------

def test_cohen_kappa_matches_the_textbook_example():
    # Wikipedia "Cohen's kappa": 50 items, yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> kappa 0.4
    a = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(["y", "y"], ["y", "y"]) is None  # chance agreement is already 1: undefined


def test_fleiss_kappa_matches_the_published_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> kappa 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    items = [[cat for cat, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_with_two_raters_is_close_to_cohen_and_single_ratings_are_ignored():
    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("a", "a"), ("c", "a")]
    k = fleiss_kappa([list(p) for p in pairs] + [["a"]])
    assert k == pytest.approx(cohen_kappa([p[0] for p in pairs], [p[1] for p in pairs]), abs=0.06)
    assert percent_agreement([list(p) for p in pairs] + [["z"]]) == pytest.approx(4 / 6)


def test_agreement_picks_cohen_for_pairs_and_fleiss_for_more():
    assert agreement([["a", "a"], ["a", "b"], ["b", "b"]])["method"] == "cohen"
    three = agreement([["a", "a", "a"], ["a", "b", "b"], ["b", "b", "b"]])
    assert three["method"] == "fleiss" and three["tasks"] == 3 and three["percent"] == pytest.approx(2 / 3, abs=1e-4)
    assert agreement([["a"], []]) == {"method": None, "kappa": None, "percent": None, "tasks": 0}


# --- sampling --------------------------------------------------------------------------------------------------

def _records(n: int = 40) -> pl.DataFrame:
    rows = []
    for i in range(n):
        cats = [["S03"], ["S05"], [], ["S06", "S09"]][i % 4]
        rows.append({"id": f"r{i:03d}", "source": "unit", "source_id": str(i), "lang": "zh" if i % 3 == 0 else "en",
                     "prompt": f"prompt {i}", "response": f"answer {i}", "reasoning": f"thinking {i}",
                     "categories": cats, "label_origin": "source", "prompt_harmful": bool(cats),
                     "category_scores": json.dumps({c: round(0.5 + (i % 10) / 20, 3) for c in cats} or {"S03": 0.02})})
    return records.conform(pl.DataFrame(rows))


def test_stratum_is_primary_dimension_by_language():
    assert stratum(["S09", "S06"], "zh") == "S06/zh"
    assert stratum([], "en") == "S00/en"
    assert stratum(None, None) == "S00/unknown"


def test_stratified_sample_spreads_over_strata_and_is_deterministic():
    df = _records(40)
    sample = select(df, 12, "stratified", seed=1)
    counts = sample.group_by("_stratum").len()
    assert sample.height == 12
    # 8 strata of 3..7 rows: 12 picks -> every stratum 1 or 2
    assert counts["len"].min() >= 1 and counts["len"].max() <= 2 and counts.height == 8
    assert select(df, 12, "stratified", seed=1)["id"].to_list() == sample["id"].to_list()
    assert select(df, 12, "stratified", seed=2)["id"].to_list() != sample["id"].to_list()


def test_sampling_skips_dropped_rows():
    df = records.mark_dropped(_records(8), pl.col("id") == "r000", "exact_duplicate")
    assert "r000" not in select(df, None, "all")["id"].to_list()
    assert select(df, None, "all").height == 7


def test_uncertain_puts_scores_near_one_half_first():
    df = _records(40)
    assert confidence(json.dumps({"S03": 0.55, "S05": 0.99})) == pytest.approx(0.1)
    assert confidence(None) is None and confidence("not json") is None
    sample = select(df, 10, "uncertain")
    conf = [confidence(v) for v in sample["category_scores"].to_list()]
    assert conf == sorted(conf) and conf[0] == pytest.approx(0.0)


def test_disagreement_puts_source_vs_classifier_conflicts_first():
    df = _records(12)
    # what the classify stage writes (curate/classify/stage.py): the facts as columns, lineage in meta
    facts = {7: (1.0, True), 4: (0.5, False)}
    df = df.with_columns(pl.Series("category_disagreement", [facts.get(i, (0.0, False))[0] for i in range(12)]),
                         pl.Series("harmful_disagreement", [facts.get(i, (0.0, False))[1] for i in range(12)]))
    scores = disagreements(df)
    assert scores[7] == pytest.approx(2.0)
    assert scores[4] == pytest.approx(0.5)
    assert select(df, 2, "disagreement")["id"].to_list() == ["r007", "r004"]
    # a run folder from before the facts were columns: the same facts, migrated from what classify wrote in meta
    meta = [records.dump_meta({"classify": {"predicted": ["S07"], "disagree_categories": {
                "source": ["S03"], "classifier": ["S07"]}, "disagree_harmful": {"source": True, "classifier": False}}})
            if i == 7 else records.dump_meta({"classify": {"predicted": ["S05", "S12"], "disagree_categories": {
                "source": ["S05"], "classifier": ["S05", "S12"]}}})
            if i == 4 else records.dump_meta({"classify": {"predicted": ["S00"]}}) for i in range(12)]
    old = records.conform(df.drop("category_disagreement", "harmful_disagreement")
                          .with_columns(pl.Series("meta", meta)))
    assert disagreements(old).to_list() == scores.to_list()
    assert select(old, 2, "disagreement")["id"].to_list() == ["r007", "r004"]


def test_disagreement_of_rows_classify_never_saw_compares_source_labels_with_the_scores():
    df = _records(3).with_columns(
        pl.Series("categories", [["S03"], ["S03"], ["S03"]]),
        pl.Series("category_scores", [json.dumps({"S03": 0.9}), json.dumps({"S07": 0.8, "S03": 0.1}), None]),
        pl.Series("label_origin", ["source", "source", "human"]),
        pl.lit(None, dtype=pl.Float64).alias("category_disagreement"),
        pl.lit(None, dtype=pl.Boolean).alias("harmful_disagreement"))
    assert disagreements(df).to_list() == [0.0, 1.0, 0.0]


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown sampling strategy"):
        select(_records(4), 2, "vibes")


# --- merge rules -----------------------------------------------------------------------------------------------

def _ann(aid, who, verdict=None, cats=None, harmful=None, corrected=None, rating=None, ts="2026-01-01T00:00:00Z"):
    result = {}
    if verdict:
        result[lc.VERDICT] = [verdict]
    if cats is not None:
        result[lc.CATEGORIES] = cats
    if harmful:
        result[lc.PROMPT_HARMFUL] = [harmful]
    if corrected is not None:
        result[lc.CORRECTED] = corrected
    if rating is not None:
        result[lc.REASONING_RATING] = rating
    return {"id": aid, "completed_by": who, "was_cancelled": False, "updated_at": ts, "result": result}


def test_majority_decides_and_ties_are_flagged():
    anns = [_ann(1, 1, "accept", ["S03"], "yes"), _ann(2, 2, "accept", ["S03", "S05"], "yes"),
            _ann(3, 3, "reject", ["S03"], "yes")]
    d = decide_task(anns, HARM, "majority")
    assert d["categories"] == ["S03"] and d["verdict"] == "accept" and d["prompt_harmful"] is True
    assert d["conflicts"] == []
    tie = decide_task(anns[:2], HARM, "majority")
    assert tie["conflicts"] == ["S05"] and tie["categories"] is None
    strict = decide_task(anns, HARM, "adjudicate")
    assert set(strict["conflicts"]) == {"S05", lc.VERDICT} and strict["verdict"] is None


def test_latest_annotation_of_an_annotator_counts_once_and_skips_are_ignored():
    anns = [_ann(1, 7, "reject", [], ts="2026-01-01T00:00:00Z"), _ann(2, 7, "accept", [], ts="2026-01-02T00:00:00Z"),
            {**_ann(3, 8, "reject", []), "was_cancelled": True}]
    d = decide_task(anns, HARM, "majority")
    assert d["verdict"] == "accept" and d["annotators"] == [7]


def test_merge_applies_edits_rejections_and_human_labels():
    df = _records(4)
    state = {"tasks": {
        "11": {"record_id": "r000", "annotations": [_ann(1, 1, "edit", ["S03", "S04"], "yes", "A better answer.", 4)]},
        "12": {"record_id": "r001", "annotations": [_ann(2, 1, "reject", ["S05"], "yes")]},
        "13": {"record_id": "r002", "annotations": [_ann(3, 1, "accept", ["S03"]), _ann(4, 2, "accept", [])]},
        "14": {"record_id": "gone", "annotations": [_ann(5, 1, "accept", [])]},
        "15": {"record_id": "r003", "annotations": []},
    }}
    out, stats = merge(df, state, harm_ids=HARM, rule="majority", project="p")
    rows = {r["id"]: r for r in out.to_dicts()}
    r0 = rows["r000"]
    assert r0["response"] == "A better answer." and r0["categories"] == ["S03", "S04"]
    assert r0["label_origin"] == "human" and r0["drop_reason"] is None
    meta0 = json.loads(r0["meta"])["review"]
    assert meta0["original_response"] == "answer 0" and meta0["reasoning_rating"] == 4 and meta0["task_id"] == 11
    assert rows["r001"]["drop_reason"] == "rejected_in_review" and rows["r001"]["response"] == "answer 1"
    r2 = rows["r002"]  # S03 ticked by one of two: a tie, flagged, labels untouched
    assert r2["categories"] == [] and r2["label_origin"] == "source"
    assert json.loads(r2["meta"])["review"]["needs_adjudication"] is True
    assert rows["r003"]["meta"] == "{}" and rows["r003"]["label_origin"] == "source"
    assert rows["r000"]["reviewed"] and not rows["r003"]["reviewed"]  # the fact the card counts
    assert stats["reviewed"] == 3 and stats["edited"] == 1 and stats["rejected"] == 1 and stats["not_in_input"] == 1
    assert out["id"].to_list() == df["id"].to_list()
    records.validate(out)


def test_an_earlier_drop_reason_wins_over_the_review():
    df = records.mark_dropped(_records(2), pl.col("id") == "r000", "near_duplicate")
    state = {"tasks": {"1": {"record_id": "r000", "annotations": [_ann(1, 1, "reject", [])]}}}
    out, _ = merge(df, state, harm_ids=HARM)
    assert out.filter(pl.col("id") == "r000")["drop_reason"].item() == "near_duplicate"


# --- stage without a server --------------------------------------------------------------------------------------

def test_stage_without_url_passes_rows_through_and_says_how_to_enable(tmp_path, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    lines: list[str] = []
    ctx = StageContext(stage="review", work_dir=tmp_path, log=lines.append)
    df = _records(6)
    out = run(df, ReviewOptions(), ctx)
    assert out.equals(df)
    assert len(lines) == 1 and "LABEL_STUDIO_URL" in lines[0] and "make label-studio" in lines[0]
    assert ctx.stats["skipped"]


def test_options_reject_unknown_rules():
    with pytest.raises(ValueError):
        ReviewOptions(conflict="coin-flip")
    with pytest.raises(ValueError):
        ReviewOptions(strategy="random")


# --- labeling config ----------------------------------------------------------------------------------------------

def test_label_config_file_is_up_to_date():
    assert lc.default_config_path().read_text(encoding="utf-8") == lc.label_config(), \
        "annotations/label_config.xml is stale: run `python -c \"from curate.review.label_config import write_default_config; write_default_config()\"`"


def test_label_config_follows_the_taxonomy(tmp_path):
    root = ET.fromstring(lc.label_config())
    names = {el.get("name") for el in root.iter() if el.get("name")}
    assert set(lc.FIELDS) <= names and {"prompt", "reasoning", "response"} <= names
    dims = [c for c in root.iter("Choices") if c.get("name") == lc.CATEGORIES][0]
    assert [c.get("alias") for c in dims] == HARM
    assert any("暴力" in c.get("value") for c in dims)  # zh names shown beside en
    hotkeys = [c.get("hotkey") for c in root.iter("Choice") if c.get("hotkey")]
    assert len(hotkeys) == len(set(hotkeys)) >= 5


def test_label_config_for_a_custom_taxonomy(tmp_path):
    import yaml

    default = yaml.safe_load((Taxonomy.load().path / "dimensions.yaml").read_text(encoding="utf-8"))
    spec = {"version": "custom", "safe": default["safe"], "dimensions": [
        {**default["dimensions"][0], "id": "X1", "name_en": "Gambling", "name_zh": "赌博"},
        {**default["dimensions"][1], "id": "X2", "name_en": "Drugs & <chemicals>", "name_zh": "毒品"}]}
    (tmp_path / "dimensions.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    root = ET.fromstring(lc.label_config(Taxonomy.load(tmp_path)))  # also proves the XML escapes "<" and "&"
    dims = [c for c in root.iter("Choices") if c.get("name") == lc.CATEGORIES][0]
    assert [(c.get("alias"), c.get("value")) for c in dims] == [
        ("X1", "X1 Gambling / 赌博"), ("X2", "X2 Drugs & <chemicals> / 毒品")]


def test_pre_annotations_fit_the_labeling_config():
    """Label Studio's own parser (label-studio-sdk LabelInterface) accepts what push sends as predictions and
    stores choices by alias (the dimension id), which pull reads back."""
    from label_studio_sdk.label_interface import LabelInterface

    from curate.review.tasks import parse_result, task

    interface = LabelInterface(lc.label_config())
    for row in _records(4).to_dicts():
        t = task(row, stratum(row["categories"], row["lang"]), 0.5, "labels:source")
        assert set(t["data"]) >= {"record_id", "prompt", "reasoning", "response", "context_html", "response_html"}
        prediction = t["predictions"][0]
        assert interface.validate_prediction(prediction), prediction
        back = parse_result(prediction["result"])
        assert back.get(lc.CATEGORIES, []) == sorted(row["categories"])
        assert back[lc.PROMPT_HARMFUL] == ["yes" if row["prompt_harmful"] else "no"]
        assert back[lc.CORRECTED] == row["response"]
    wrong = {"model_version": "x", "result": [
        {"from_name": lc.CATEGORIES, "to_name": "prompt", "type": "choices", "value": {"choices": ["S99"]}}]}
    assert not interface.validate_prediction(wrong)


# --- the labeling screen: task shapes, hotkeys, guidelines, rendering ---------------------------------------------

def _config_choices(config: str) -> dict[str, list[ET.Element]]:
    root = ET.fromstring(config)
    return {c.get("name"): list(c.iter("Choice")) for c in root.iter("Choices")}


def test_task_shape_follows_the_record_and_predictions_fit_the_config():
    """A record without an answer becomes a prompt-only task (no answer questions pre-filled); one with an answer
    pre-selects its response kind and pre-fills the corrected answer. Label Studio's parser accepts both."""
    from label_studio_sdk.label_interface import LabelInterface

    from curate.review.tasks import parse_result, task

    interface = LabelInterface(lc.label_config())
    rows = _records(2).to_dicts()
    prompt_only = {**rows[0], "response": None, "reasoning": None}
    answered = {**rows[1], "response_kind": "refusal"}
    for row, shape in ((prompt_only, "prompt"), (answered, "answer")):
        t = task(row, "S05/en", 0.3, "labels:source")
        prediction = t["predictions"][0]
        assert interface.validate_prediction(prediction), prediction
        names = {r["from_name"]: r["value"] for r in prediction["result"]}
        assert names[lc.SHAPE] == {"choices": [shape]} and t["data"]["shape"] == shape
    t = task(prompt_only, "S03/zh", None, "v")
    assert {r["from_name"] for r in t["predictions"][0]["result"]} == {lc.SHAPE, lc.PROMPT_HARMFUL, lc.CATEGORIES}
    assert t["data"]["response_html"] == "" and "Answer kind" not in t["data"]["context_html"]
    back = parse_result(task(answered, "S05/en", 0.3, "v")["predictions"][0]["result"])
    assert back[lc.RESPONSE_KIND] == ["refusal"] and back[lc.CORRECTED] == answered["response"]


def test_answer_questions_only_show_for_answer_tasks_and_dimensions_only_under_harmful():
    root = ET.fromstring(lc.label_config())
    views = [v for v in root.iter("View") if v.get("visibleWhen") == "choice-selected"]
    conditional = {v.get("whenTagName") + "=" + v.get("whenChoiceValue"): v for v in views}
    answer_views = [v for v in views if (v.get("whenTagName"), v.get("whenChoiceValue")) == (lc.SHAPE, "answer")]
    in_answer_views = {c.get("name") for v in answer_views for c in v.iter() if c.get("name")}
    assert {lc.VERDICT, lc.CORRECTED, lc.REASONING_RATING, lc.RESPONSE_KIND, "reasoning", "response"} <= in_answer_views
    assert {c.get("name") for c in conditional[f"{lc.PROMPT_HARMFUL}=yes"].iter("Choices")} == {lc.CATEGORIES}
    assert {c.get("name") for c in conditional[f"{lc.VERDICT}=edit"].iter("TextArea")} == {lc.CORRECTED}
    required = {c.get("name"): c.get("requiredMessage") for c in root.iter("Choices") if c.get("required") == "true"}
    assert set(required) == {lc.PROMPT_HARMFUL, lc.CATEGORIES, lc.VERDICT}
    for message in required.values():  # the reviewer's words in both languages, no internal control names
        assert " / " in message and not any(n in message for n in (lc.PROMPT_HARMFUL, lc.CATEGORIES, "Checkbox"))


def test_not_harmful_carries_no_dimensions_back():
    from curate.review.tasks import parse_result

    result = [{"from_name": lc.PROMPT_HARMFUL, "value": {"choices": ["no"]}},
              {"from_name": lc.CATEGORIES, "value": {"choices": ["S03"]}}]
    assert parse_result(result) == {lc.PROMPT_HARMFUL: ["no"]}
    harmful = [{**result[0], "value": {"choices": ["yes"]}}, result[1]]
    assert parse_result(harmful)[lc.CATEGORIES] == ["S03"]
    shape = {"from_name": lc.SHAPE, "value": {"choices": ["prompt"]}}
    reject = {"from_name": lc.VERDICT, "value": {"choices": ["reject"]}}
    assert lc.VERDICT not in parse_result([shape, reject, *harmful])  # hidden in a prompt-only task: ignored
    assert parse_result([{**shape, "value": {"choices": ["answer"]}}, reject])[lc.VERDICT] == ["reject"]


def test_every_choice_has_a_chosen_unique_hotkey_and_the_guidelines_list_them():
    from curate.review.guidelines import instructions_html

    choices = _config_choices(lc.label_config())
    bound = [(c.get("hotkey"), c.get("alias")) for name, cs in choices.items() if name != lc.SHAPE for c in cs]
    bound += [(r.get("hotkey"), r.get("name")) for r in ET.fromstring(lc.label_config()).iter("Rating")]
    assert all(key for key, _ in bound), bound  # none left for Label Studio to auto-assign
    keys = [key for key, _ in bound]
    assert len(keys) == len(set(keys))
    dims = dict((alias, key) for key, alias in bound if alias.startswith("S") and alias[1:].isdigit())
    assert dims["S01"] == "1" and dims["S09"] == "9" and dims["S10"] == "shift+0" and dims["S14"] == "shift+4"
    listed = [key for key, _, _ in lc.hotkeys()]
    assert set(keys) | {lc.SUBMIT_KEY} == set(listed)
    page = instructions_html("en")
    for key in listed:
        assert f"<kbd>{key}</kbd>" in page


def test_guidelines_page_is_formatted_warning_first_reviewer_language_first():
    from curate.review.guidelines import instructions_html

    for lang, first, second in (("en", "Review guidelines", "审核指南"), ("zh", "审核指南", "Review guidelines")):
        page = instructions_html(lang)
        assert page.index("curate-content-warning") < page.index("<h2>") < page.index("<h1>")
        warning = page[:page.index("</div></div>")]
        assert ("Content warning" in warning) and ("内容提示" in warning)
        assert page.index(first) < page.index(second)
        assert "<h1>" in page and "<strong>" in page and "<li>" in page
        assert "## " not in page and "**" not in page  # no raw Markdown left
    with pytest.raises(ValueError, match="reviewer language"):
        instructions_html("fr")


def test_markdown_in_answers_is_rendered_and_sanitised():
    from curate.review.render import markdown_html

    out = markdown_html("See [the site](https://example.org) and **this**.\n<script>alert(1)</script>\n"
                        "![tracker](https://evil.example/pixel.png) [js](javascript:alert(1))")
    assert '<a href="https://example.org" rel="noopener noreferrer">the site</a>' in out
    assert "<strong>this</strong>" in out and "<script>" not in out and "&lt;script&gt;" in out
    assert "<img" not in out and "evil.example" not in out and 'href="javascript' not in out
    assert markdown_html(None) == "" and markdown_html("") == ""


def test_context_header_is_labelled_and_scores_are_the_classifiers():
    from curate.review.tasks import context_html

    row = {**_records(1).to_dicts()[0], "source": "multijail", "lang": "zh", "label_origin": "classifier",
           "category_scores": json.dumps({"S00": 0.2, "S04": 0.96, "S02": 0.47, "S05": 0.35, "S09": 0.1}),
           "response_kind": "refusal"}
    html = context_html(row, "S04/zh", Taxonomy.load())
    for label in ("Source", "Language", "Pre-selected labels from", "Classifier: harmful", "top dimensions",
                  "Answer kind"):
        assert f"{label}" in html
    assert "0.80" in html and "S04 Weapons &amp; CBRNE 0.96, S02" in html and "S00" not in html
    assert "S09" not in html  # top three only
    assert "the classifier" in html and "refusal" in html


def test_priority_is_classifier_uncertainty_and_stratified_samples_come_hardest_first():
    assert uncertainty(json.dumps({"S03": 0.5})) == 1.0 and uncertainty(json.dumps({"S03": 0.99})) == pytest.approx(0.02)
    assert uncertainty(None) is None
    sample = select(_records(40), 12, "stratified", seed=1)
    priority = sample["_priority"].to_list()
    assert priority == sorted(priority, reverse=True) and priority[0] > priority[-1]
    assert set(sample["_stratum"].to_list()) == set(select(_records(40), 12, "stratified", seed=1)["_stratum"])


def test_reviewers_response_kind_replaces_the_records():
    df = records.conform(pl.DataFrame([{**_records(1).to_dicts()[0], "response_kind": "helpful"}]))
    ann = _ann(1, 1, "accept", ["S03"], "yes")
    ann["result"][lc.RESPONSE_KIND] = ["refusal"]
    out, _ = merge(df, {"tasks": {"5": {"record_id": "r000", "annotations": [ann]}}}, harm_ids=HARM)
    assert out["response_kind"].to_list() == ["refusal"]
