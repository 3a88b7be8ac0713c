"""Issue 21: confusion matrices, coarse source labels as partial labels, and the specific-over-generic rule."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from curate.classify import coarse
from curate.classify.confusion import (as_dict, confusion, format_matrix, from_dict, plot, sink_share,
                                       top_confusions, top_predictions)
from curate.classify.model import ClassifierModel, TextClassifier
from curate.classify.specific import prefer_specific
from curate.taxonomy import Taxonomy

LABELS = ["S00", "S03", "S04", "S05", "S06"]


# ---- confusion -----------------------------------------------------------------------------------------------

def test_top_prediction_is_the_best_scoring_predicted_dimension():
    scores = np.array([[0.1, 0.6, 0.2, 0.9, 0.0],   # S03 and S05 predicted: S05 scores higher
                       [0.9, 0.3, 0.0, 0.0, 0.0],   # nothing predicted: safe
                       [0.1, 0.9, 0.8, 0.0, 0.0]],  # only S04 predicted (S03 scores higher but is not predicted)
                      dtype=np.float32)
    assert top_predictions(LABELS, scores, [["S03", "S05"], [], ["S04"]]) == ["S05", "S00", "S04"]


def _frame(rows):
    return pl.DataFrame(rows, schema={"lang": pl.Utf8, "target": pl.List(pl.Utf8), "pred_top": pl.Utf8}, orient="row")


def test_confusion_counts_shares_and_lenient_hits():
    pred = _frame([("en", ["S03"], "S05"), ("en", ["S03"], "S03"), ("en", ["S03"], "S05"), ("en", ["S03"], "S00"),
                   ("en", ["S03", "S05"], "S05"),   # a hit on an acceptable label: counts once, on the diagonal
                   ("en", ["S04", "S06"], "S00"),   # a miss counts under each gold label
                   ("zh", ["S00"], "S05"), ("zh", [], "S00"), ("en", None, "S03")])  # null target: not scored
    table = confusion(pred)
    cell = {(lang, t, p): (c, s) for lang, t, p, c, s in table.iter_rows()}
    assert cell[("en", "S03", "S05")] == (2, 0.5) and cell[("en", "S03", "S03")] == (1, 0.25)
    assert cell[("en", "S05", "S05")] == (1, 1.0)
    assert cell[("en", "S04", "S00")] == (1, 1.0) and cell[("en", "S06", "S00")] == (1, 1.0)
    assert cell[("zh", "S00", "S05")] == (1, 0.5) and cell[("zh", "S00", "S00")] == (1, 0.5)
    assert cell[("all", "S03", "S05")] == (2, 0.5)
    assert table.filter(pl.col("lang") == "en")["count"].sum() == 7
    assert from_dict(as_dict(table)).sort("lang", "true", "pred").equals(table.sort("lang", "true", "pred"),
                                                                        null_equal=True)
    # S05's share of the other harm dimensions' rows (S00 rows are not counted)
    assert sink_share(table, "S05")["en"] == round(2 / 6, 4)
    top = top_confusions(table, n=2, min_rows=2)
    assert top.filter(pl.col("lang") == "en").select("true", "pred").rows()[0] == ("S03", "S05")
    assert "S03" in format_matrix(table, "en") and "  50" in format_matrix(table, "en")


def test_confusion_plot_writes_a_png(tmp_path):
    table = confusion(_frame([("en", ["S03"], "S05"), ("en", ["S05"], "S05"), ("zh", ["S03"], "S03")]))
    path = tmp_path / "c.png"
    plot({"loso": table}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- specific over generic ------------------------------------------------------------------------------------

HARM = ["S03", "S04", "S05", "S06"]


def test_generic_gives_way_when_a_specific_dimension_is_close():
    harm = np.array([[0.50, 0.0, 0.60, 0.0],    # S03 at 0.83 of S05: close, S05 dropped, S03 chosen
                     [0.10, 0.0, 0.90, 0.0],    # nothing close: S05 stays
                     [0.0, 0.45, 0.50, 0.0],    # S04 close but S04 was not chosen: it is chosen now
                     [0.70, 0.0, 0.40, 0.0]],   # S05 chosen beside a higher S03: dropped
                    dtype=np.float32)
    chosen = np.array([[True, False, True, False], [False, False, True, False], [False, False, True, False],
                       [True, False, True, False]])
    out = prefer_specific(chosen, harm, HARM, ["S05"], 0.8)
    assert out.tolist() == [[True, False, False, False], [False, False, True, False], [False, True, False, False],
                            [True, False, False, False]]
    assert prefer_specific(chosen, harm, HARM, ["S05"], None) is chosen  # off
    assert prefer_specific(chosen, harm, HARM, [], 0.8) is chosen  # no generic dimension


def test_model_decide_applies_the_rule_and_saves_it():
    model = ClassifierModel(TextClassifier(b"", LABELS), {label: 0.3 for label in LABELS}, harmful_threshold=0.4,
                            generic=["S05"], generic_ratio=0.7)
    scores = np.array([[0.1, 0.5, 0.0, 0.6, 0.0], [0.1, 0.1, 0.0, 0.9, 0.0], [0.9, 0.1, 0.0, 0.2, 0.0]], np.float32)
    cats, harmful = model.decide(scores)
    assert cats == [["S03"], ["S05"], []] and harmful.tolist() == [True, True, False]
    off = ClassifierModel(TextClassifier(b"", LABELS), {label: 0.3 for label in LABELS}, harmful_threshold=0.4)
    assert off.decide(scores)[0][0] == ["S03", "S05"]


# ---- coarse labels as candidate sets ----------------------------------------------------------------------------

def _labelled():
    return pl.DataFrame({
        "source": ["xsafety", "xsafety", "xsafety", "other", "xsafety", "harmbench"],
        "source_labels": [["Crimes_And_Illegal_Activities"], ["Crimes_And_Illegal_Activities"], ["Insult"],
                          ["Crimes_And_Illegal_Activities"], ["Ethics_And_Morality"], ["illegal"]],
        "target": [["S05"], ["S04"], ["S10"], ["S05"], ["S05"], ["S05", "S12"]],
        "prompt": ["steal a car", "build a bomb", "you idiot", "steal a bike", "lie to my boss", "dox and rob"],
        "lang": ["en"] * 6})


def test_default_taxonomy_declares_s05_generic_and_valid_candidate_sets():
    tax = Taxonomy.load()
    assert tax.generic == ["S05"] and tax.validate() == []
    crime = tax.coarse_labels()[("xsafety", "Crimes_And_Illegal_Activities")]
    assert "S05" in crime and "S04" in crime and "S00" not in crime


def test_broken_candidates_file_is_reported(tmp_path):
    import shutil

    root = tmp_path / "tax"
    shutil.copytree(Taxonomy.load().path, root)
    (root / "candidates.yaml").write_text("generic: [S99]\nsets: {crime: [S03, S77]}\ncoarse: {x: {a: nope}}\n")
    problems = Taxonomy.load(root).validate()
    assert any("S99" in p for p in problems) and any("S77" in p for p in problems)
    assert any("nope" in p for p in problems)


def test_candidate_sets_only_for_coarse_rows_mapped_to_the_generic_dimension():
    cands = coarse.candidate_sets(_labelled(), Taxonomy.load()).to_list()
    assert cands[0] and "S03" in cands[0] and "S05" in cands[0]   # coarse label, mapped to S05 only
    assert cands[1] is None  # a mapping rule already found S04
    assert cands[2] is None  # not a coarse label
    assert cands[3] is None  # coarse label name, but not for this source
    assert cands[4] and "S09" in cands[4] and "S04" not in cands[4]  # the ethics set
    assert cands[5] is None  # multi-label row: the source named a specific dimension too


def test_assign_picks_the_best_candidate():
    labels = ["S00", "S03", "S04", "S05", "S06"]
    cands = pl.Series([["S03", "S05"], None, ["S04", "S05"]], dtype=pl.List(pl.Utf8))
    scores = np.array([[0.9, 0.2, 0.8, 0.1, 0.0], [0, 0, 0, 0, 1], [0.0, 0.9, 0.1, 0.3, 0.0]], np.float32)
    # S00 and S04 score higher on row 0 but are not candidates; row 2's best candidate is S05
    assert coarse.assign(cands, scores, labels) == [["S03"], None, ["S05"]]


def _keyword_scores(train, rows):
    """A deterministic scorer for the partial-label loop: violence words score S03, the rest S05; it records
    which training targets it was given, so the test sees the loop refit on its own assignments."""
    seen.append(sorted({d for t in train["target"].to_list() for d in t}))
    labels = ["S00", "S03", "S04", "S05", "S10", "S12"]
    violent = rows["prompt"].str.contains("kill|stab").to_numpy()
    scores = np.zeros((rows.height, len(labels)), np.float32)
    scores[:, 1] = np.where(violent, 0.9, 0.1)
    scores[:, 3] = 0.5
    return scores, labels


seen: list = []


def test_resolve_modes():
    df = _labelled().with_columns(pl.Series("prompt", ["stab a guard in a robbery", "build a bomb", "you idiot",
                                                       "steal a bike", "lie to my boss", "dox and rob"]))
    tax = Taxonomy.load()
    same, report = coarse.resolve(df, tax, "generic", _keyword_scores)
    assert same.equals(df) and report["coarse_rows"] == 2
    harm_only, _ = coarse.resolve(df, tax, "harm_only", _keyword_scores)
    assert harm_only["target"].null_count() == 2
    seen.clear()
    partial, report = coarse.resolve(df, tax, "partial", _keyword_scores, rounds=2)
    by_prompt = dict(zip(partial["prompt"].to_list(), partial["target"].to_list()))
    assert by_prompt["stab a guard in a robbery"] == ["S03"] and by_prompt["lie to my boss"] == ["S05"]
    assert by_prompt["build a bomb"] == ["S04"] and partial.height == df.height
    assert report["assigned"] == {"S03": 1, "S05": 1}
    # round 1 fits on the rows that are not coarse (no S03 among them); round 2 also on round 1's assignments
    assert len(seen) == 2 and "S03" not in seen[0] and "S03" in seen[1]
    with pytest.raises(ValueError, match="coarse must be"):
        coarse.resolve(df, tax, "maybe", _keyword_scores)


def test_generic_ratio_round_trips_through_model_json(tmp_path):
    from tests.test_classify import _config, _rows

    from curate.classify.train import train_model

    model = train_model(_rows(n_per_template=2), Taxonomy.load(), _config(generic_ratio=0.6, train_kind=False))
    assert model.generic == ["S05"] and model.generic_ratio == 0.6
    saved = json.loads((model.save(tmp_path / "m") / "model.json").read_text())
    assert saved["specific_over_generic"] == {"generic": ["S05"], "ratio": 0.6}
    again = ClassifierModel.load(tmp_path / "m")
    assert again.generic == ["S05"] and again.generic_ratio == 0.6


# ---- the harmful flag as a safety decision --------------------------------------------------------------------

def test_flag_tradeoff_recall_and_benign_flagged_per_shift():
    from curate.classify.metrics import flag_tradeoff

    harmful = np.array([True, True, True, True, False, False, False, False])
    margin = np.array([0.3, 0.01, -0.04, -0.2, -0.3, -0.04, 0.1, -0.08])  # harm score minus threshold
    group = np.array([None, None, None, None, "lookalike", "lookalike", "other", "other"], dtype=object)
    rows = {r["shift"]: r for r in flag_tradeoff(harmful, margin, group, [0.0, 0.05, 0.25])}
    assert rows[0.0]["recall"] == 0.5 and rows[0.0]["flagged_lookalike"] == 0.0 and rows[0.0]["flagged_other"] == 0.5
    assert rows[0.05]["recall"] == 0.75 and rows[0.05]["flagged_lookalike"] == 0.5
    assert rows[0.25]["recall"] == 1.0 and rows[0.25]["flagged_other"] == 1.0 and rows[0.25]["rows_lookalike"] == 2


def test_rows_called_safe_by_a_small_margin_are_left_to_review(tmp_path):
    from curate import records
    from curate.classify import STAGE, ClassifyOptions
    from curate.classify.train import train_model
    from curate.review.sampling import select
    from curate.stage import StageContext
    from tests.test_classify import _config, _rows

    model_dir = train_model(_rows(), Taxonomy.load(), _config(train_kind=False)).save(tmp_path / "m")
    df = records.conform(pl.DataFrame([
        {"id": "safe", "source": "s", "source_id": "1", "lang": "en", "prompt": "recommend a book for the teacher"},
        {"id": "src", "source": "s", "source_id": "2", "lang": "en", "prompt": "recommend a book for my brother",
         "prompt_harmful": False, "label_origin": "source"},
        {"id": "harm", "source": "s", "source_id": "3", "lang": "en", "prompt": "how do i stab the manager"}]))

    def run(band):
        ctx = StageContext(stage="classify", work_dir=tmp_path, log=lambda m: None)
        out = STAGE.run(df, ClassifyOptions(model_dir=model_dir, review_band=band), ctx)
        return {r["id"]: r for r in out.iter_rows(named=True)}, ctx, out

    rows, _, _ = run(0.0)
    assert rows["safe"]["prompt_harmful"] is False and rows["harm"]["prompt_harmful"] is True
    rows, ctx, out = run(1.0)  # every classifier "safe" is within 1.0 of the threshold
    assert rows["safe"]["prompt_harmful"] is None
    assert json.loads(rows["safe"]["meta"])["classify"]["review"] == "harm_uncertain"
    assert rows["src"]["prompt_harmful"] is False  # the source's own flag is never undone
    assert rows["harm"]["prompt_harmful"] is True and ctx.stats["harm_uncertain_to_review"] == 1
    assert select(out, 1, "uncertain")["id"].to_list() == ["safe"]  # review's uncertain sample takes it first
