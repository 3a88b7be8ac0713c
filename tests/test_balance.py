"""Balance: quotas, shortfalls, preference order, determinism, leakage-free splits."""
from __future__ import annotations

import csv
import json
from collections import Counter

import polars as pl
import pytest
from pydantic import ValidationError

from curate import records
from curate.balance import STAGE, BalanceOptions, load_options, record_kind
from curate.balance.stage import harm_dimensions
from curate.balance.targets import apportion, compute_targets
from curate.stage import StageContext


def make_rows(spec, start=0):
    """spec: list of (n, fields) -> record dicts with unique ids."""
    rows = []
    i = start
    for n, fields in spec:
        for _ in range(n):
            row = {"source": "t", "source_id": str(i), "lang": "en", "prompt": f"p{i}", "response": f"r{i}",
                   "prompt_harmful": True, "categories": ["S03"], "meta": "{}"}
            row.update(fields)
            row["id"] = records.make_id(row["source"], row["source_id"])
            rows.append(row)
            i += 1
    return rows


def frame(rows):
    return records.validate(records.conform(pl.DataFrame(rows, infer_schema_length=None)))


def run(df, tmp_path, run_dir=None, logs=None, **opts):
    ctx = StageContext(stage="balance", work_dir=tmp_path, run_dir=run_dir,
                       log=(logs.append if logs is not None else lambda m: None))
    out = STAGE.run(df, STAGE.Options.model_validate(opts), ctx)
    records.validate(out, where="balance output")
    assert sorted(out["id"]) == sorted(df["id"])
    return out, ctx


def selected(out):
    return out.filter(pl.col("drop_reason").is_null())


def test_apportion_sums_exactly():
    parts = apportion(10, {"a": 1, "b": 1, "c": 1})
    assert sum(parts.values()) == 10 and sorted(parts.values()) == [3, 3, 4]
    assert apportion(5, {"a": 0, "b": 0}) == {"a": 0, "b": 0}


def test_compute_targets_clamps_and_splits_languages():
    available = {("refusal", "S03", "en"): 50, ("refusal", "S03", "zh"): 10,
                 ("refusal", "S05", "en"): 8, ("refusal", "S05", "zh"): 8}
    opts = BalanceOptions(min_per_dimension=30, max_per_dimension=40, languages={"en": 0.5, "zh": 0.5},
                          dimensions={"S08": {"min": 6}})
    targets = compute_targets(available, opts, harm_dimensions=["S03", "S05", "S08", "S09"])
    assert targets[("refusal", "S03", "en")] == 20 and targets[("refusal", "S03", "zh")] == 20
    assert targets[("refusal", "S05", "en")] == 15 and targets[("refusal", "S05", "zh")] == 15
    # A dimension with no rows still gets its minimum, so its shortfall is visible.
    assert targets[("refusal", "S08", "en")] == 3 and targets[("refusal", "S08", "zh")] == 3
    assert targets[("refusal", "S09", "en")] == 15 and targets[("refusal", "S09", "zh")] == 15


def test_quotas_met_where_possible_and_shortfalls_exact(tmp_path):
    rows = make_rows([(50, {"lang": "en"}), (10, {"lang": "zh"}),
                      (8, {"lang": "en", "categories": ["S05"]}), (8, {"lang": "zh", "categories": ["S05"]})])
    logs = []
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    out, ctx = run(frame(rows), tmp_path, run_dir=run_dir, logs=logs, min_per_dimension=30, max_per_dimension=40,
                   languages={"en": 0.5, "zh": 0.5})
    got = Counter((r["categories"][0], r["lang"]) for r in selected(out).iter_rows(named=True))
    assert got == {("S03", "en"): 20, ("S03", "zh"): 10, ("S05", "en"): 8, ("S05", "zh"): 8}
    assert out.filter(pl.col("drop_reason") == "not_selected").height == 76 - 46
    absent = [d for d in harm_dimensions(ctx) if d not in ("S03", "S05")]  # taxonomy dims with no rows at all
    short = {(r["dimension"], r["lang"]): r["shortfall"] for r in ctx.stats["shortfalls"]}
    expected = {("S03", "zh"): 10, ("S05", "en"): 7, ("S05", "zh"): 7}
    expected.update({(d, lang): 15 for d in absent for lang in ("en", "zh")})
    assert short == expected
    assert ctx.stats["shortfall_total"] == sum(expected.values())
    assert ctx.stats["selected"] == 46
    with open(run_dir / "shortfall.csv", encoding="utf-8") as fh:
        lines = list(csv.DictReader(fh))
    assert {(l["dimension"], l["lang"]): int(l["shortfall"]) for l in lines} == expected
    text = "\n".join(logs)
    assert "achieved vs target" in text and "needs 10 more refusal rows in S03 (zh)" in text



def test_kind_mix(tmp_path):
    rows = make_rows([(100, {}), (100, {"prompt_harmful": False, "categories": []}),
                      (100, {"prompt_harmful": None, "categories": [], "meta": json.dumps({"collect": {"role": "general"}})})])
    out, ctx = run(frame(rows), tmp_path, kinds={"refusal": 0.5, "helpful": 0.3, "general": 0.2})
    kinds = Counter(record_kind(r) for r in selected(out).iter_rows(named=True))
    assert kinds == {"refusal": 100, "helpful": 60, "general": 40}
    assert ctx.stats["shortfall_total"] == 0


def test_record_kind_rules():
    assert record_kind({"prompt_harmful": True, "response_kind": "refusal", "role": "safety"}) == "refusal"
    assert record_kind({"prompt_harmful": True, "response_kind": "safe_completion",
                        "role": "safety"}) == "safe_completion"
    assert record_kind({"prompt_harmful": False, "role": "safety"}) == "helpful"
    assert record_kind({"prompt_harmful": None, "role": "general"}) == "general"
    assert record_kind({"prompt_harmful": None, "role": "safety"}) is None


def test_judge_score_from_score_or_criteria():
    """Old run folders: the judge score is migrated from meta (the score, else the mean of the criteria)."""
    def judge_score(meta):
        row = {"id": "a", "source": "s", "source_id": "1", "lang": "en", "prompt": "p", "meta": meta}
        return records.conform(pl.DataFrame([row]))["answer_judge_score"][0]

    assert judge_score('{"synthesize": {"judge_score": 7}}') == 7.0
    criteria = {"policy_adherence": 8, "safety": 10, "helpfulness": 6, "reasoning_quality": 8}
    assert judge_score(json.dumps({"synthesize": {"judge": criteria}})) == 8.0
    assert judge_score('{"synthesize": {"status": "source_kept"}}') is None


def test_the_judge_score_column_orders_the_pick_whatever_meta_says(tmp_path):
    """Balance reads the fact column, not meta: a row whose meta claims a high score does not win by it."""
    rows = make_rows([(1, {"answer_judge_score": 9.0, "meta": json.dumps({"synthesize": {"judge_score": 1}})}),
                      (1, {"answer_judge_score": 2.0, "meta": json.dumps({"synthesize": {"judge_score": 10}})})])
    out, _ = run(frame(rows), tmp_path, max_per_dimension=1)
    assert [r["answer_judge_score"] for r in selected(out).iter_rows(named=True)] == [9.0]


def test_prefers_human_then_judge_score_then_new_clusters(tmp_path):
    def meta(score):
        return json.dumps({"synthesize": {"judge_score": score}})
    rows = make_rows([(2, {"label_origin": "human", "meta": meta(1)}),
                      (1, {"meta": meta(9)}), (1, {"meta": meta(8)}),
                      (6, {"meta": meta(5), "dup_cluster": "c1"}),
                      (1, {"meta": meta(5), "dup_cluster": "c2"}),
                      (5, {"meta": meta(2)})])
    out, _ = run(frame(rows), tmp_path, max_per_dimension=5)
    picked = {r["source_id"] for r in selected(out).iter_rows(named=True)}
    # 2 humans (despite low scores), the 9 and the 8, then one score-5 row: same score ties go to a new cluster
    # only after one of c1 is in; both clusters are new at that point, so exactly one score-5 row is picked.
    assert {"0", "1", "2", "3"} <= picked and len(picked) == 5
    out2, _ = run(frame(rows), tmp_path, max_per_dimension=6)
    picked2 = [r for r in selected(out2).iter_rows(named=True) if r["source_id"] in {str(i) for i in range(4, 11)}]
    assert sorted(r["dup_cluster"] for r in picked2) == ["c1", "c2"]  # not the same cluster twice


def test_never_selects_harmful_responses_or_pending(tmp_path):
    rows = make_rows([(5, {}), (3, {"response_kind": "harmful"}), (4, {"response": None})])
    out, ctx = run(frame(rows), tmp_path)
    assert selected(out).height == 5
    assert ctx.stats["ineligible"] == {"harmful_response": 3, "pending_synthesis": 4}
    reasons = out.group_by("drop_reason").len().drop_nulls()
    assert dict(reasons.iter_rows()) == {"harmful_response": 3, "pending_synthesis": 4}
    out, _ = run(frame(rows), tmp_path, pending="keep")
    assert selected(out).height == 9


def test_already_dropped_rows_keep_their_reason(tmp_path):
    rows = make_rows([(5, {}), (3, {"drop_reason": "duplicate", "split": None})])
    out, _ = run(frame(rows), tmp_path)
    assert Counter(out["drop_reason"].to_list()) == {None: 5, "duplicate": 3}


def mixed_rows(n=400):
    spec = []
    for dim in ("S03", "S05", "S09"):
        for lang in ("en", "zh"):
            spec.append((n // 6, {"lang": lang, "categories": [dim]}))
    rows = make_rows(spec)
    for i, row in enumerate(rows):
        row["dup_cluster"] = f"c{i // 3}"  # clusters of 3, some spanning languages
        row["meta"] = json.dumps({"synthesize": {"judge_score": i % 3}})
    return rows


def test_deterministic_with_seed_and_input_order(tmp_path):
    rows = mixed_rows()
    opts = {"seed": 7, "max_per_dimension": 60, "test_fraction": 0.2}
    a, _ = run(frame(rows), tmp_path, **opts)
    b, _ = run(frame(list(reversed(rows))), tmp_path, **opts)
    key = ["id", "drop_reason", "split"]
    assert a.select(key).sort("id").equals(b.select(key).sort("id"))
    c, _ = run(frame(rows), tmp_path, **{**opts, "seed": 8})
    assert not a.select(key).sort("id").equals(c.select(key).sort("id"))


def test_no_dup_cluster_across_splits_and_stratified(tmp_path):
    rows = mixed_rows(600)
    out, ctx = run(frame(rows), tmp_path, test_fraction=0.25, seed=3)
    chosen = selected(out)
    per_cluster = chosen.group_by("dup_cluster").agg(pl.col("split").n_unique().alias("n"))
    assert per_cluster["n"].max() == 1
    assert set(chosen["split"]) == {"train", "test"}
    for (dim, lang), part in chosen.with_columns(pl.col("categories").list.first().alias("dim")).group_by(["dim", "lang"]):
        share = part.filter(pl.col("split") == "test").height / part.height
        assert 0.15 <= share <= 0.3, (dim, lang, share)
    assert out.filter(pl.col("drop_reason").is_not_null())["split"].null_count() == out.filter(
        pl.col("drop_reason").is_not_null()).height
    assert ctx.stats["splits"] == dict(Counter(chosen["split"]))


def test_config_file_and_inline_override(tmp_path):
    cfg = tmp_path / "balance.yaml"
    cfg.write_text("seed: 5\ntest_fraction: 0.3\nlanguages: {zh: 1, en: 1}\ndimensions: {S08: {min: 10}}\n"
                   "shortfall_csv: out/short.csv\n", encoding="utf-8")
    opts = load_options(cfg, seed=9)
    assert opts.seed == 9 and opts.test_fraction == 0.3 and opts.bounds("S08") == (10, None)
    assert opts.shortfall_csv == tmp_path / "out" / "short.csv"
    inline = BalanceOptions.model_validate({"config": "balance.yaml"}, context={"base_dir": tmp_path})
    assert inline.seed == 5
    cfg.write_text("sed: 5\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="sed"):
        load_options(cfg)
    with pytest.raises(ValidationError, match="not found"):
        load_options(tmp_path / "missing.yaml")
    with pytest.raises(ValidationError, match="unknown kind"):
        BalanceOptions(kinds={"refusals": 1})


def test_diversity_avoids_the_same_prompt_template_twice(tmp_path):
    def meta(template):
        return json.dumps({"collect": {"template": template}, "synthesize": {"template": "en/refusal.v1"}})
    rows = make_rows([(6, {"meta": meta("roleplay")}), (1, {"meta": meta("base64")})])
    for seed in range(5):
        out, _ = run(frame(rows), tmp_path, max_per_dimension=2, seed=seed)
        picked = [json.loads(r["meta"])["collect"]["template"] for r in selected(out).iter_rows(named=True)]
        assert sorted(picked) == ["base64", "roleplay"]


def _greedy_reference(candidates, quota, seed, used_clusters, used_templates):
    """The pick rule written plainly (the rule the compiled pick implements): sort by (human first, higher score,
    seeded hash of the id); within each tie group, three passes admitting rows with 0, 1, then 2 used
    cluster/template; clusters and templates stay used for later strata."""
    from itertools import groupby

    from curate.balance.select import seeded_hash

    def key(c):
        return (not c["human"], -(c["score"] if c["score"] is not None else float("-inf")), seeded_hash(seed, c["id"]))
    chosen = []
    for _, group in groupby(sorted(candidates, key=key), key=lambda c: key(c)[:2]):
        rest = list(group)
        for allowed in (0, 1, 2):
            later = []
            for c in rest:
                repeats = (c["cluster"] in used_clusters) + (c["template"] is not None and c["template"] in used_templates)
                if len(chosen) < quota and repeats <= allowed:
                    chosen.append(c["id"])
                    used_clusters.add(c["cluster"])
                    if c["template"] is not None:
                        used_templates.add(c["template"])
                else:
                    later.append(c)
            rest = later
    return chosen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_compiled_pick_follows_the_rule_on_random_rows(seed):
    import random

    from curate.balance.select import Picker

    rnd = random.Random(seed)
    rows = [{"id": f"r{i}", "_kind": "refusal", "_dim": rnd.choice(["S01", "S03"]), "lang": rnd.choice(["en", "zh"]),
             "_human": rnd.random() < 0.2, "_score": rnd.choice([None, 0.5, 0.9, 0.9]),
             "cluster": f"c{rnd.randrange(40)}", "template": rnd.choice([None, None, "t1", "t2", "t3"])}
            for i in range(400)]
    df = pl.DataFrame(rows).rename({"cluster": "_cluster", "template": "_template"})
    picker = Picker(df, ["_kind", "_dim", "lang"], seed)
    used_clusters, used_templates = set(), set()
    for stratum in sorted({(r["_kind"], r["_dim"], r["lang"]) for r in rows}):
        quota = rnd.randrange(5, 120)
        got = picker.rows["id"].gather(picker.pick(stratum, quota)).to_list()
        mine = [r for r in rows if (r["_kind"], r["_dim"], r["lang"]) == stratum]
        want = _greedy_reference([{**r, "human": r["_human"], "score": r["_score"]} for r in mine], quota, seed,
                                 used_clusters, used_templates)
        assert got == want, stratum
