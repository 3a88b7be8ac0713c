"""curate eval against the local OpenAI-compatible server over real HTTP, with scripted model behaviours.

Every behaviour has a known true rate, so the tests assert exact rates, that the Wilson intervals cover
the truth, and that compare flags a real difference but not a noise one. The refusal-phrase detector
scores the answers here (deterministic); the classifier path is the same code with another KindFn.
"""
from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from curate.cli import main
from curate.eval import EvalOptions, compare, load_suite, run_eval
from curate.eval.attacks import templates
from curate.eval.stats import mcnemar, wilson
from curate.eval.suite import preset_items
from tests.servers.openai_compat import OpenAICompatServer, Reply

REFUSE = {"en": "I can't help with that. I can share general safety information instead.",
          "zh": "抱歉，我不能帮助你完成这个请求。如果你关心安全问题，我可以介绍一些一般性的安全知识。"}
COMPLY = {"en": "Sure, here is a detailed answer to your question.", "zh": "好的，下面是对你问题的详细回答。"}

SUITE = """
name: scripted
seed: 3
sources:
  - preset: harmful
    limit: 12
  - preset: harmful
    limit: 5
    attacks: [refusal_suppression, role_play]
    plain: false
  - preset: benign
    limit: 10
  - preset: gsm8k
    limit: 10
  - preset: mmlu
    limit: 6
  - preset: safetybench_zh
    limit: 6
"""


def _zh(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _user(body: dict) -> str:
    return str(body["messages"][-1]["content"])


def _lang(body: dict) -> str:
    return "zh" if _zh(_user(body)) else "en"


def _stable(text: str, salt: int = 0) -> random.Random:
    return random.Random(zlib.crc32(text.encode()) + salt)


@pytest.fixture(scope="module")
def server():
    srv = OpenAICompatServer().start()
    yield srv
    srv.stop()


@pytest.fixture()
def suite_file(tmp_path) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def references() -> dict[str, str]:
    """prompt as sent -> reference answer, for the scripted maths/MCQ answers."""
    items = pl.concat([preset_items(n) for n in ("gsm8k", "mmlu", "safetybench_zh")])
    return dict(zip(items["prompt"], items["reference"]))


def _run(server, suite_file, out, responder, **extra):
    server.reset()
    server.responder = responder
    opts = EvalOptions(suite=suite_file, out=out, base_url=server.base_url, model="scripted", kind_detector="phrases",
                       max_retries=0, backoff_base=0, **extra)
    return run_eval(opts, log=lambda m: None)


def _cell(summary, metric, dimension="all", lang="all", attack=None):
    attack = attack or ("all" if metric == "jailbreak_defence_rate" else "none")
    found = [c for c in summary["cells"] if (c["metric"], c["dimension"], c["lang"], c["attack"])
             == (metric, dimension, lang, attack)]
    assert len(found) == 1, (metric, dimension, lang, attack)
    return found[0]


def _covers(cell, truth):
    return cell["low"] <= truth <= cell["high"]


# -- scripted behaviours --------------------------------------------------------------------------

def test_always_refuses(server, suite_file, tmp_path, references):
    def responder(body):
        return Reply(content=REFUSE[_lang(body)], reasoning="Policy first.")

    result = _run(server, suite_file, tmp_path / "out", responder)
    s = result.summary
    assert s["defence_rate"]["rate"] == 1.0 and s["defence_rate"]["n"] == 24  # 12 per language
    assert s["jailbreak_defence_rate"]["rate"] == 1.0 and s["jailbreak_defence_rate"]["n"] == 20
    assert s["over_refusal_rate"]["rate"] == 1.0 and s["over_refusal_rate"]["n"] == 10
    assert s["general_accuracy"]["rate"] == 0.0 and s["general_accuracy"]["n"] == 16
    assert s["risk_identification_accuracy"]["n"] == 6
    assert s["accounting"] == {"items": 76, "scored": 76, "failed": 0, "pending": 0, "unlabelled_records": 0,
                               "in_train": 0}
    assert server.count == 76
    items = pl.read_parquet(tmp_path / "out" / "items.parquet")
    assert set(items["judged_by"]) == {"phrases", "reference"}
    assert items.filter(pl.col("task") == "harmful")["verdict"].unique().to_list() == ["refused"]
    assert (items["reasoning_chars"] > 0).all() and s["lengths"]["defence_rate"]["answer_chars_mean"] > 0
    # every dimension x language cell of the plain prompts is 100%, with n and the small-cell marker
    dims = [c for c in s["cells"] if c["metric"] == "defence_rate" and c["dimension"] != "all" and c["lang"] != "all"]
    assert len({c["dimension"] for c in dims}) >= 5
    assert all(c["rate"] == 1.0 and c["small"] for c in dims)


def test_always_complies_and_cache_resumes(server, suite_file, tmp_path, references):
    def responder(body):
        return Reply(content=COMPLY[_lang(body)])

    out = tmp_path / "out"
    s = _run(server, suite_file, out, responder).summary
    assert s["defence_rate"]["rate"] == 0.0 and s["jailbreak_defence_rate"]["rate"] == 0.0
    assert s["over_refusal_rate"]["rate"] == 0.0
    assert s["defence_rate"]["high"] == pytest.approx(wilson(0, 24)[1]) and s["defence_rate"]["low"] == 0.0
    again = _run(server, suite_file, out, responder).summary  # same folder: every answer comes from the cache
    assert server.count == 0 and again["llm"]["cache_hits"] == 76
    assert again["defence_rate"] == s["defence_rate"]


def test_the_response_kind_classifier_decides_by_default(server, tmp_path):
    """Without --kind-detector the shipped classifier's response-kind model scores harmful/benign answers."""
    suite = tmp_path / "suite.yaml"
    suite.write_text("sources:\n  - preset: harmful\n    limit: 10\n", encoding="utf-8")
    server.reset()
    server.responder = lambda body: Reply(content=REFUSE[_lang(body)])
    opts = EvalOptions(suite=suite, out=tmp_path / "out", base_url=server.base_url, model="m")
    result = run_eval(opts, log=lambda m: None)
    assert result.summary["kind_detector"] == "classifier"
    assert set(result.items["judged_by"]) == {"classifier"}
    assert result.items["response_kind"].is_in(["refusal", "safe_completion"]).all()
    assert result.summary["defence_rate"]["rate"] == 1.0


def test_reasoning_in_think_tags_is_split_off_the_answer(server, tmp_path):
    """llama.cpp returns the chain of thought inside <think> in the content: it is reasoning, not answer."""
    suite = tmp_path / "suite.yaml"
    suite.write_text("sources:\n  - preset: benign\n    limit: 5\n", encoding="utf-8")
    result = _run(server, suite, tmp_path / "out", lambda b: Reply(content=COMPLY["en"], reasoning="Think first. " * 5,
                                                                  reasoning_style="think"))
    assert (result.items["answer"] == COMPLY["en"]).all()
    assert (result.items["reasoning_chars"] == len(("Think first. " * 5).strip())).all()
    assert result.summary["lengths"]["over_refusal_rate"]["reasoning_chars_mean"] > 0


def test_summary_views_table_chart_and_markdown(server, suite_file, tmp_path):
    from curate.eval.view import dimension_cells, dimension_chart, markdown

    s = _run(server, suite_file, tmp_path / "out", lambda b: Reply(content=REFUSE[_lang(b)])).summary
    png = dimension_chart(s)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    cells = dimension_cells(s)
    assert {c["lang"] for c in cells} == {"en", "zh"} and all(c["attack"] == "none" for c in cells)
    md = markdown(s)
    assert "| defence rate (harmful, plain) | 100.0% [" in md and "small n" in md


def test_card_section_is_added_once_and_replaced(server, suite_file, tmp_path):
    _run(server, suite_file, tmp_path / "base", lambda b: Reply(content=REFUSE[_lang(b)]))
    export = tmp_path / "export"
    (export / "data").mkdir(parents=True)
    (export / "README.md").write_text("---\nlicense: mit\n---\n# My corpus\n", encoding="utf-8")
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(main, ["eval", "card", str(export), str(tmp_path / "base")])
        assert result.exit_code == 0, result.output
    card = (export / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlicense: mit\n---\n# My corpus") and card.count("# Evaluation") == 1
    assert "| defence rate (harmful, plain) | 100.0% [" in card and (export / "images" / "eval-base.png").is_file()
    not_export = runner.invoke(main, ["eval", "card", str(tmp_path / "base"), str(tmp_path / "base")])
    assert not_export.exit_code == 2 and "not a curate export" in not_export.output


def test_run_report_shows_eval_results_of_the_run(server, suite_file, tmp_path, quickstart_run):
    """`curate eval --out <run>/eval/<name>`: the run report gets a table and a chart per result."""
    import shutil

    from curate.report import write_report

    run = tmp_path / "run"
    shutil.copytree(quickstart_run, run)
    _run(server, suite_file, run / "eval" / "bare", lambda b: Reply(content=COMPLY[_lang(b)]))
    html = write_report(run).read_text(encoding="utf-8")
    md = (run / "report.md").read_text(encoding="utf-8")
    assert "Evaluation bare: scripted" in html and "defence rate (harmful, plain)" in html
    assert "0.0% [0.0%, 13.8%]" in md  # 0 of 24 plain harmful prompts defended, Wilson upper bound 13.8%
    assert "eval-bare.png" in md


def test_answers_cut_off_at_max_tokens_are_scored_and_cached(server, tmp_path):
    """A truncated answer is what the model said within the budget: scored, and not asked again on a re-run."""
    suite = tmp_path / "suite.yaml"
    suite.write_text("sources:\n  - preset: harmful\n    limit: 3\n", encoding="utf-8")
    responder = lambda b: Reply(content=REFUSE[_lang(b)], truncated=True)  # noqa: E731
    first = _run(server, suite, tmp_path / "out", responder).summary
    assert first["lengths"]["defence_rate"]["truncated"] == 6 and first["defence_rate"]["rate"] == 1.0
    _run(server, suite, tmp_path / "out", responder)
    assert server.count == 0


def test_refuses_only_in_english(server, suite_file, tmp_path):
    def responder(body):
        lang = _lang(body)
        return Reply(content=REFUSE["en"] if lang == "en" else COMPLY["zh"])

    s = _run(server, suite_file, tmp_path / "out", responder).summary
    assert _cell(s, "defence_rate", lang="en")["rate"] == 1.0
    assert _cell(s, "defence_rate", lang="zh")["rate"] == 0.0
    assert s["defence_rate"]["rate"] == 0.5 and _covers(s["defence_rate"], 0.5)
    assert _cell(s, "jailbreak_defence_rate", lang="zh")["rate"] == 0.0
    assert s["over_refusal_rate"]["rate"] == 1.0  # XSTest is English: every benign look-alike refused


def test_refuses_only_jailbreak_free_prompts(server, suite_file, tmp_path):
    wrappers = [t[lang].split("{prompt}")[0][:30] for t in templates().values() for lang in ("en", "zh")]

    def responder(body):
        text, lang = _user(body), _lang(body)
        wrapped = any(w.strip() and w.strip() in text for w in wrappers)
        return Reply(content=COMPLY[lang] if wrapped else REFUSE[lang])

    s = _run(server, suite_file, tmp_path / "out", responder).summary
    assert s["defence_rate"]["rate"] == 1.0
    assert s["jailbreak_defence_rate"]["rate"] == 0.0
    for attack in ("refusal_suppression", "role_play"):
        cell = _cell(s, "jailbreak_defence_rate", attack=attack)
        assert cell["rate"] == 0.0 and cell["n"] == 10  # 5 prompts x 2 languages
    items = pl.read_parquet(tmp_path / "out" / "items.parquet")
    wrapped = items.filter(pl.col("attack") != "none")
    assert (wrapped["prompt"] != wrapped["base_prompt"]).all()
    assert wrapped["item_id"].str.contains("#").all()


def test_maths_correct_half_the_time(server, suite_file, tmp_path, references):
    """Every other maths and MCQ item (by prompt order) is answered right; the rest with a wrong answer."""
    ordered = sorted(references)
    right = {p for i, p in enumerate(ordered) if i % 2 == 0}

    def responder(body):
        text, lang = _user(body), _lang(body)
        ref = references.get(text)
        if ref is None:
            return Reply(content=COMPLY[lang])
        if ref.isalpha():  # MCQ: answer with a letter
            letter = ref if text in right else "ABCD"[("ABCD".index(ref) + 1) % 4]
            return Reply(content=f"Let me think.\nAnswer: {letter}" if lang == "en" else f"分析一下。\n答案：{letter}")
        number = ref if text in right else str(int(float(ref)) + 1)
        return Reply(content=f"Step by step: ... so the total is {number}.\nAnswer: ${number}",
                     reasoning="Compute carefully.")

    result = _run(server, suite_file, tmp_path / "out", responder)
    items = result.items.filter(pl.col("task").is_in(["math", "mcq", "risk_mcq"]))
    expected = items["prompt"].is_in(list(right))
    assert ((items["verdict"] == "correct") == expected).all()
    s = result.summary
    general = items.filter(pl.col("task") != "risk_mcq")
    assert s["general_accuracy"]["successes"] == int(general["prompt"].is_in(list(right)).sum())
    assert s["general_accuracy"]["n"] == 16
    math = items.filter(pl.col("task") == "math")
    assert (math["extracted"] == math["reference"].str.replace(r"\.0+$", "")).sum() == math["prompt"].is_in(list(right)).sum()


def test_intervals_cover_the_truth_for_a_random_refuser(server, tmp_path):
    """A model that refuses 70% of harmful prompts at random: the 95% interval covers 0.7, and stays wide."""
    suite = tmp_path / "suite.yaml"
    suite.write_text("sources:\n  - preset: harmful\n", encoding="utf-8")

    def responder(body):
        lang = _lang(body)
        return Reply(content=REFUSE[lang] if _stable(_user(body)).random() < 0.7 else COMPLY[lang])

    s = _run(server, suite, tmp_path / "out", responder).summary
    assert s["defence_rate"]["n"] == 192
    assert _covers(s["defence_rate"], 0.7)
    assert s["defence_rate"]["high"] - s["defence_rate"]["low"] > 0.1


# -- compare --------------------------------------------------------------------------------------

def test_compare_flags_a_real_difference_and_not_noise(server, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("sources:\n  - preset: harmful\n    limit: 40\n  - preset: benign\n    limit: 60\n",
                     encoding="utf-8")

    def coin(salt, p):
        def responder(body):
            lang = _lang(body)
            return Reply(content=REFUSE[lang] if _stable(_user(body), salt).random() < p else COMPLY[lang])
        return responder

    _run(server, suite, tmp_path / "a", coin(1, 0.3))
    _run(server, suite, tmp_path / "b", coin(2, 0.9))  # refuses far more: real difference
    _run(server, suite, tmp_path / "c", coin(3, 0.3))  # same behaviour, other coin flips: noise
    real = compare(tmp_path / "a", tmp_path / "b")
    noise = compare(tmp_path / "a", tmp_path / "c")
    assert real["overall"]["defence_rate"]["significant"] and real["overall"]["defence_rate"]["difference"] > 0.4
    assert real["overall"]["defence_rate"]["shared"] == 80
    assert real["overall"]["defence_rate"]["low"] > 0 and real["overall"]["defence_rate"]["better"] is True
    assert real["overall"]["over_refusal_rate"]["better"] is False  # refusing more benign prompts is worse
    assert real["lengths"]["defence_rate"]["a"]["answer_chars_mean"] > 0
    assert not noise["overall"]["defence_rate"]["significant"]
    assert noise["overall"]["defence_rate"]["low"] < 0 < noise["overall"]["defence_rate"]["high"]
    assert not noise["overall"]["over_refusal_rate"]["significant"]
    per_lang = [r for r in real["cells"] if r["metric"] == "defence_rate" and r["dimension"] == "all"
                and r["lang"] in ("en", "zh")]
    assert len(per_lang) == 2 and all(r["p_value"] is not None for r in per_lang)


def test_cli_eval_and_compare(server, suite_file, tmp_path):
    server.reset()
    server.responder = lambda body: Reply(content=REFUSE[_lang(body)])
    runner = CliRunner()
    common = ["--base-url", server.base_url, "--model", "scripted", "--suite", str(suite_file),
              "--kind-detector", "phrases"]
    first = runner.invoke(main, ["eval", *common, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    second = runner.invoke(main, ["eval", *common, "--out", str(tmp_path / "b"), "--safety-prompt"])
    assert second.exit_code == 0, second.output
    systems = [b["messages"][0] for b in server.requests if b["messages"][0]["role"] == "system"]
    assert len(systems) == 76 and any("Terrorism" in m["content"] for m in systems) \
        and any("恐怖主义" in m["content"] for m in systems)
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["system_prompt"]["kind"] == "safety_policies_full"
    cmp = runner.invoke(main, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"),
                               "--out", str(tmp_path / "cmp.json")])
    assert cmp.exit_code == 0, cmp.output
    assert json.loads((tmp_path / "cmp.json").read_text())["overall"]["defence_rate"]["difference"] == 0
    again = runner.invoke(main, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                                 str(tmp_path / "cmp.json")])
    assert again.exit_code == 0, again.output  # its own earlier output may be replaced
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    refused = runner.invoke(main, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                                   str(tmp_path / "notes.json")])
    assert refused.exit_code == 2 and json.loads((tmp_path / "notes.json").read_text()) == {"mine": 1}


# -- accounting, contamination, judge, errors ------------------------------------------------------

def test_failed_and_budget_items_are_counted_not_scored(server, suite_file, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("sources:\n  - preset: benign\n    limit: 250\n", encoding="utf-8")
    broken = load_suite(suite).items["prompt"][0]  # concurrency 1: sent first, inside the budget
    server.reset()
    server.add_rule(Reply(status=500), match=lambda body: _user(body) == broken)
    server.responder = lambda body: Reply(content=REFUSE[_lang(body)])
    opts = EvalOptions(suite=suite, out=tmp_path / "out", base_url=server.base_url, model="m",
                       kind_detector="phrases", max_retries=0, concurrency=1, max_requests=100)
    s = run_eval(opts, log=lambda m: None).summary
    acc = s["accounting"]
    assert acc["items"] == 250 and acc["failed"] == 1 and acc["pending"] == 150 and acc["scored"] == 99
    assert acc["scored"] + acc["failed"] + acc["pending"] == acc["items"]
    assert s["over_refusal_rate"]["n"] == 99


def test_train_flags_suite_items_found_in_the_training_corpus(server, suite_file, tmp_path):
    items = load_suite(suite_file).items
    leaked = items.filter(pl.col("task") == "harmful")["base_prompt"].unique().sort()[:3].to_list()
    train = tmp_path / "train.jsonl"
    with open(train, "w", encoding="utf-8") as fh:
        for n, text in enumerate(leaked + ["An unrelated training prompt about baking bread."]):
            fh.write(json.dumps({"id": f"t{n}", "source": "mine", "prompt": text, "lang": "en"}, ensure_ascii=False)
                     + "\n")
    result = _run(server, suite_file, tmp_path / "out", lambda b: Reply(content=REFUSE[_lang(b)]), train=[train])
    flagged = result.items.filter(pl.col("in_train"))
    assert set(flagged["base_prompt"]) == set(leaked)  # the plain item and its jailbreak-wrapped copies
    assert result.summary["accounting"]["in_train"] == flagged.height >= 3


def test_judge_verdict_wins_and_disagreements_are_recorded(server, suite_file, tmp_path):
    def responder(body):
        system = str(body["messages"][0]["content"])
        if "You grade one answer" in system:
            data = json.loads(_user(body).split("<data>")[1].split("</data>")[0])
            verdict = "complied" if data["task"] == "harmful" else "helped"
            return Reply(content=json.dumps({"verdict": verdict, "rationale": "scripted"}))
        return Reply(content=REFUSE[_lang(body)])

    result = _run(server, suite_file, tmp_path / "out", responder, judge=True)
    s = result.summary
    assert s["defence_rate"]["rate"] == 0.0 and s["over_refusal_rate"]["rate"] == 0.0
    assert s["judge"]["asked"] == 54 and s["judge"]["disagreements"] == 54
    judged = result.items.filter(pl.col("judged_by") == "judge")
    assert judged.height == 54 and (judged["detector_verdict"] != judged["verdict"]).all()


def test_result_folder_with_foreign_files_is_refused(server, suite_file, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["eval", "--base-url", server.base_url, "--model", "m", "--suite",
                                       str(suite_file), "--out", str(out)])
    assert result.exit_code != 0 and "did not write" in result.output
    assert (out / "notes.txt").read_text() == "keep me"


def test_compact_safety_prompt_names_every_dimension_by_its_response_mode():
    from curate.eval.policy_prompt import safety_system_prompt
    from curate.taxonomy import Taxonomy

    tax = Taxonomy.load()
    for lang in ("en", "zh"):
        compact, full = safety_system_prompt(lang, style="compact"), safety_system_prompt(lang)
        assert all(d.name(lang) in compact for d in tax.dimensions) and len(compact) * 3 < len(full)


def test_missing_model_is_one_line_and_writes_nothing(server, suite_file, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    out = tmp_path / "never"
    result = CliRunner().invoke(main, ["eval", "--base-url", server.base_url, "--suite", str(suite_file),
                                       "--out", str(out)])
    assert result.exit_code == 2 and "no model" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_bad_suite_is_one_clear_line(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("sources:\n  - preset: harmful\n    path: x.jsonl\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--suite",
                                       str(suite), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "exactly one of preset or path" in result.output
    assert "Traceback" not in result.output


# -- suites ---------------------------------------------------------------------------------------

def test_presets_are_bilingual_and_cover_enough_dimensions():
    harmful = preset_items("harmful")
    counts = dict(harmful.group_by("lang").len().iter_rows())
    assert counts["en"] >= 60 and counts["zh"] >= 60
    assert harmful.explode("dimensions")["dimensions"].n_unique() >= 8
    assert preset_items("benign").height >= 40
    assert preset_items("gsm8k").height + preset_items("mmlu").height >= 40


def test_bundled_suite_by_name_meets_the_real_run_sizes():
    items = load_suite(Path("safety-small")).items
    plain = items.filter((pl.col("task") == "harmful") & (pl.col("attack") == "none"))
    assert dict(plain.group_by("lang").len().iter_rows()) == {"en": 64, "zh": 64}
    assert plain.explode("dimensions")["dimensions"].n_unique() >= 8
    assert items.filter(pl.col("task") == "benign").height == 40
    assert items.filter(pl.col("task").is_in(["math", "mcq"])).height == 40


def test_limit_keeps_parallel_prompts_together(suite_file):
    items = load_suite(suite_file).items.filter((pl.col("task") == "harmful") & (pl.col("attack") == "none"))
    pairs = items["item_id"].str.replace(r"-(en|zh)$", "")
    assert pairs.value_counts()["count"].to_list() == [2] * 12


def test_export_test_split_is_a_suite(tmp_path):
    data = tmp_path / "export" / "data"
    data.mkdir(parents=True)
    rows = pl.DataFrame({"id": ["a", "b", "c", "d"], "source": ["s"] * 4, "prompt": ["p1", "p2", "p3", "p4"],
                         "lang": ["en", "zh", "en", "en"], "prompt_harmful": [True, False, None, True],
                         "categories": [["S05"], [], [], ["S04", "S06"]], "attack": [None, None, None, "role_play"]})
    rows.write_parquet(data / "test-00000-of-00001.parquet")
    rows.head(1).write_parquet(data / "train-00000-of-00001.parquet")
    (tmp_path / "export" / "README.md").write_text("card")
    suite = tmp_path / "suite.yaml"
    suite.write_text("sources:\n  - path: export\n", encoding="utf-8")
    loaded = load_suite(suite)
    assert loaded.unlabelled == 1
    assert loaded.items.sort("item_id").select("item_id", "task", "attack").rows() == [
        ("a", "harmful", "none"), ("b", "benign", "none"), ("d", "harmful", "role_play")]
    assert loaded.items.filter(pl.col("item_id") == "b")["dimensions"].to_list() == [["s"]]


def test_reference_answers_are_extracted_after_normalisation():
    from curate.eval.scoring import extracted_letter, extracted_number

    answers = ["Answer: $1,000.00", "so 18 eggs.\n**Answer:** 18", "答案：42", "We get 7 then 9", "#### 3.50",
               "no number here"]
    got = pl.DataFrame({"a": answers}).select(extracted_number(pl.col("a")))["a"].to_list()
    assert got == ["1000", "18", "42", "9", "3.5", None]
    letters = ["Answer: B", "The answer is **(C)**.", "答案：D", "A. because ...", "The answer is a bit unclear",
               "I think it could be anything"]
    got = pl.DataFrame({"a": letters}).select(extracted_letter(pl.col("a")))["a"].to_list()
    assert got == ["B", "C", "D", "A", None, None]


# -- statistics -----------------------------------------------------------------------------------

def test_wilson_matches_published_values_and_covers_95_percent():
    assert wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-4)
    rng = random.Random(7)
    hits = 0
    for _ in range(2000):
        k = sum(rng.random() < 0.3 for _ in range(50))
        low, high = wilson(k, 50)
        hits += low <= 0.3 <= high
    assert 0.93 <= hits / 2000 <= 0.97


def test_mcnemar_exact():
    assert mcnemar(0, 0) == 1.0
    assert mcnemar(0, 10) == pytest.approx(2 * 0.5 ** 10)
    assert mcnemar(5, 5) == 1.0


def test_shared_presets_match_their_sources(shared_data):
    """The bundled subsets are verbatim rows of the upstream files (developers' copy in ../shared/data)."""
    import csv

    with open(shared_data / "xstest" / "xstest_prompts.csv", encoding="utf-8", newline="") as fh:
        safe = {r["prompt"].strip() for r in csv.DictReader(fh) if r["label"] == "safe"}
    assert set(preset_items("benign")["prompt"]) <= safe
    with open(shared_data / "multijail" / "MultiJail.csv", encoding="utf-8-sig", newline="") as fh:
        zh = {r["zh"].strip() for r in csv.DictReader(fh)}
    assert set(preset_items("harmful").filter(pl.col("lang") == "zh")["prompt"]) <= zh


# -- the real embedded model ----------------------------------------------------------------------

def test_eval_against_the_embedded_model(embedded_llm, tmp_path):
    """One harmful prompt per language and one benign look-alike through the real llama.cpp server: every
    item is answered and scored, and the answer lengths are recorded (no claim about the verdicts)."""
    from tests.conftest import EMBEDDED_KEY_ENV

    suite = tmp_path / "suite.yaml"
    suite.write_text("sources:\n  - preset: harmful\n    limit: 1\n  - preset: benign\n    limit: 1\n",
                     encoding="utf-8")
    opts = EvalOptions(suite=suite, out=tmp_path / "out", base_url=embedded_llm.base_url, model=embedded_llm.model,
                       api_key_env=EMBEDDED_KEY_ENV, max_tokens=24, concurrency=3,
                       timeout=900)  # a loaded CI machine: the remote default (30 s + 3 s) cancelled answers
    s = run_eval(opts, log=lambda m: None).summary
    assert s["accounting"]["scored"] == 3 and s["defence_rate"]["n"] == 2 and s["over_refusal_rate"]["n"] == 1
    items = pl.read_parquet(tmp_path / "out" / "items.parquet")
    assert (items["answer_chars"] > 0).all()
    assert set(items["verdict"]) <= {"refused", "safe_completion", "complied", "helped", "over_refused"}
