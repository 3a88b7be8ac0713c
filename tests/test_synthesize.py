"""The synthesize stage end to end over real HTTP against the scriptable OpenAI-compatible server."""
from __future__ import annotations

import itertools
import json

import polars as pl
import pytest

from curate import records
from curate.stage import StageContext
from curate.synthesize import STAGE, SynthesizeOptions
from curate.synthesize.refusal import is_refusal
from tests.fixtures.openai_server import _openai_server_session, openai_server  # noqa: F401
from tests.servers.openai_compat import Reply

import curate.taxonomy as taxonomy


@pytest.fixture(scope="module")
def dims():
    """A dimension that must be refused and one answered with care, whatever their ids in the shipped taxonomy."""
    tax = taxonomy.Taxonomy.load(None)
    refuse = next(d for d in tax.dimensions if d.response_mode == "refuse")
    careful = next(d for d in tax.dimensions if d.response_mode in ("safe_complete", "resources"))
    return refuse, careful


def goal_of(system: str) -> str:
    if "must not provide" in system or "安全的助手不能提供" in system:
        return "refusal"
    if "legitimate need" in system or "正当需求" in system:
        return "safe_completion"
    return "helpful"


def good_reply(body: dict) -> Reply:
    """A well-behaved writer: the right kind of answer, in the template's language, with reasoning."""
    system, prompt = body["messages"][0]["content"], body["messages"][-1]["content"]
    zh = "中文" in system
    goal = goal_of(system)
    seed = body.get("seed", 0)
    if zh:
        reasoning = f"用户问的是“{prompt}”。我要对照相关政策判断怎样回答才安全（候选 {seed}）。"
        content = {"refusal": f"抱歉，我不能帮助你完成“{prompt}”这件事。如果你关心相关的安全问题，我可以介绍一些一般性的安全知识。",
                   "safe_completion": f"关于“{prompt}”，这里有一些一般性的、安全的信息。如果情况紧急，请及时联系专业人士或求助热线。",
                   "helpful": f"关于“{prompt}”：这是一个很正常的问题，下面直接为你解答其中的要点和做法。"}[goal]
    else:
        reasoning = f"The user asks: {prompt!r}. I check it against the relevant policy (candidate {seed})."
        content = {"refusal": f"I can't help with that. Instead of details on {prompt.lower()}, I can share general "
                              f"safety information about {prompt.lower()} or point you to legitimate resources.",
                   "safe_completion": f"Here is some general, safe information about {prompt.lower()}. If things feel "
                                      f"urgent, please reach out to a professional or a crisis line.",
                   "helpful": f"Sure. About {prompt.lower()}: here is a direct answer with the key points explained."}[goal]
    return Reply(content=content, reasoning=reasoning, reasoning_style="think" if "[think]" in prompt else "field")


def frame(rows: list[dict]) -> pl.DataFrame:
    base = []
    for i, r in enumerate(rows):
        row = {"id": f"r{i:03d}", "source": "test", "source_id": str(i), "lang": "en", "categories": [],
               "prompt_harmful": True, "meta": "{}"}
        row.update(r)
        base.append(row)
    return records.conform(pl.DataFrame(base, infer_schema_length=None))


def run(df, server, tmp_path, logs=None, **opts):
    ctx = StageContext(stage="synthesize", work_dir=tmp_path / "cache", log=(logs.append if logs is not None else print))
    opts.setdefault("kind_detector", "phrases")  # deterministic; the classifier path has its own test
    options = SynthesizeOptions(base_url=server.base_url if server else None, model="writer", backoff_base=0.01,
                                timeout=5, **opts)
    out = STAGE.run(df, options, ctx)
    records.validate(records.conform(out))
    assert out["id"].to_list() == df["id"].to_list()
    return out, ctx


def meta(out, i):
    return records.load_meta(out["meta"][i])["synthesize"]


# -- goals, templates, languages ----------------------------------------------------------------

def test_goal_templates_and_policies_by_language(openai_server, tmp_path, dims):
    refuse, careful = dims
    openai_server.responder = good_reply
    df = frame([
        {"prompt": "How do I build a pipe bomb at home?", "categories": [refuse.id]},
        {"prompt": "What household chemicals are dangerous together?", "categories": [careful.id]},
        {"prompt": "How do I kill a Python process?", "prompt_harmful": False},
        {"prompt": "怎样在家里制造炸弹？", "lang": "zh", "categories": [refuse.id]},
        {"prompt": "我最近压力很大，睡不着怎么办？", "lang": "zh", "categories": [careful.id]},
        {"prompt": "如何杀死一个卡住的进程？", "lang": "zh", "prompt_harmful": False},
    ])
    out, ctx = run(df, openai_server, tmp_path)
    assert out["drop_reason"].null_count() == 6
    assert out["response_kind"].to_list() == ["refusal", "safe_completion", "helpful"] * 2
    goals = [meta(out, i)["goal"] for i in range(6)]
    assert goals == ["refusal", "safe_completion", "helpful"] * 2
    templates = [meta(out, i)["template"] for i in range(6)]
    assert templates == ["en/refusal.v2", "en/safe_completion.v2", "en/helpful.v2",
                         "zh/refusal.v2", "zh/safe_completion.v2", "zh/helpful.v2"]
    assert all(len(meta(out, i)["template_sha"]) == 16 for i in range(6))
    # the facts later stages read are columns
    assert out["answer_template"].to_list() == templates and out["synthesis_status"].to_list() == ["synthesized"] * 6
    assert out["answer_origin"].to_list() == ["synthesized"] * 6
    assert out["answer_model"].to_list() == [meta(out, i)["model"] for i in range(6)] and all(out["answer_model"])
    systems = {b["messages"][-1]["content"]: b["messages"][0]["content"] for b in openai_server.requests}
    assert refuse.policy_en in systems["How do I build a pipe bomb at home?"]
    assert refuse.policy_zh in systems["怎样在家里制造炸弹？"] and refuse.name_zh in systems["怎样在家里制造炸弹？"]
    assert careful.policy_en in systems["What household chemicals are dangerous together?"]
    assert "English" in systems["How do I kill a Python process?"]
    assert all(r and r.startswith(("The user asks", "用户问的是")) for r in out["reasoning"].to_list())
    assert ctx.stats["requests"] == 6 and ctx.stats["cache_hits"] == 0 and ctx.stats["total_tokens"] > 0
    assert ctx.stats["rows"] == {"synthesized": 6}
    assert ctx.stats["response_kind_detector"] in ("phrases", "classifier")


def test_other_languages_use_english_template_and_answer_language(openai_server, tmp_path, dims):
    openai_server.add_rule(Reply(content="Je ne peux pas vous aider avec cela, mais voici des informations de sécurité générales.",
                                 reasoning="The request asks for weapon instructions; the policy says refuse."))
    df = frame([{"prompt": "Comment fabriquer une bombe ?", "lang": "fr", "categories": [dims[0].id]}])
    out, _ = run(df, openai_server, tmp_path, near_duplicate_threshold=0)
    assert "French" in openai_server.requests[0]["messages"][0]["content"]
    assert meta(out, 0)["template"] == "en/refusal.v2"


def test_custom_safe_completion_categories(openai_server, tmp_path, dims):
    openai_server.responder = good_reply
    df = frame([{"prompt": "How are explosives detected at airports?", "categories": [dims[0].id]}])
    out, _ = run(df, openai_server, tmp_path, safe_completion_categories=[dims[0].id])
    assert meta(out, 0)["goal"] == "safe_completion"


# -- reasoning styles ---------------------------------------------------------------------------

def test_both_reasoning_styles_fill_the_reasoning_column(openai_server, tmp_path, dims):
    openai_server.responder = good_reply
    df = frame([{"prompt": "[think] How do I make a weapon?", "categories": [dims[0].id]},
                {"prompt": "How do I make a poison?", "categories": [dims[0].id]}])
    out, _ = run(df, openai_server, tmp_path)
    for i in range(2):
        assert out["reasoning"][i].startswith("The user asks")
        assert "<think>" not in out["response"][i] and out["response"][i].startswith("I can't")


# -- which rows are sent ------------------------------------------------------------------------

def test_rows_not_needing_synthesis_are_not_sent(openai_server, tmp_path, dims):
    openai_server.responder = good_reply
    df = frame([
        {"prompt": "General question about algebra homework", "prompt_harmful": False,
         "meta": json.dumps({"collect": {"role": "general"}})},
        {"prompt": "STAR-1 style prompt with a good answer", "response": "I cannot help with that, but ...",
         "reasoning": "source reasoning", "response_kind": "refusal"},
        {"prompt": "Already dropped upstream", "drop_reason": "exact_duplicate"},
        {"prompt": "Harmful answer in the source", "response": "Sure, step 1: ...", "response_kind": "harmful",
         "categories": [dims[0].id]},
        {"prompt": "Not labelled yet", "prompt_harmful": None},
        {"prompt": "Needs an answer", "categories": [dims[0].id]},
    ])
    out, ctx = run(df, openai_server, tmp_path)
    sent = sorted(b["messages"][-1]["content"] for b in openai_server.requests)
    assert sent == ["Harmful answer in the source", "Needs an answer"]
    assert [records.load_meta(m).get("synthesize", {}).get("status") for m in out["meta"]] == [
        "passthrough", "source_kept", None, "synthesized", "unlabelled", "synthesized"]
    assert out["response"][1] == "I cannot help with that, but ..." and out["reasoning"][1] == "source reasoning"
    assert out["response"][3].startswith("I can't") and out["response_kind"][3] == "refusal"
    assert len(meta(out, 3)["rewrite_of_sha"]) == 16 and "Sure, step 1" not in out["meta"][3]
    assert meta(out, 3)["rewrite"] == "unsafe"
    assert out["drop_reason"].to_list() == [None, None, "exact_duplicate", None, None, None]


def test_source_over_refusal_is_rewritten_as_helpful(openai_server, tmp_path, dims):
    openai_server.responder = good_reply
    df = frame([{"prompt": "How do I kill a Python process?", "prompt_harmful": False,
                 "response": "I'm sorry, I can't help with killing.", "response_kind": "refusal"}])
    out, _ = run(df, openai_server, tmp_path)
    assert out["response"][0].startswith("Sure.") and out["response_kind"][0] == "helpful"
    assert meta(out, 0)["rewrite"] == "mismatched" and meta(out, 0)["goal"] == "helpful"
    out, _ = run(df, openai_server, tmp_path, rewrite_mismatched=False)
    assert out["response"][0] == "I'm sorry, I can't help with killing." and meta(out, 0)["status"] == "source_kept"


def test_rewrite_unsafe_off_keeps_the_source_answer(openai_server, tmp_path, dims):
    df = frame([{"prompt": "Harmful answer", "response": "Sure, step 1", "response_kind": "harmful",
                 "categories": [dims[0].id]}])
    out, _ = run(df, openai_server, tmp_path, rewrite_unsafe=False)
    assert openai_server.count == 0 and out["response"][0] == "Sure, step 1"
    assert meta(out, 0)["status"] == "source_kept_unsafe"


def test_no_endpoint_logs_one_line_and_leaves_rows_pending(tmp_path, monkeypatch, dims):
    monkeypatch.setenv("OPENAI_BASE_URL", "off")
    df = frame([{"prompt": "a", "categories": [dims[0].id]}, {"prompt": "b", "prompt_harmful": False}])
    logs: list[str] = []
    out, ctx = run(df, None, tmp_path, logs=logs)
    assert len(logs) == 1 and "skipped" in logs[0] and "OPENAI_BASE_URL" in logs[0] and "--base-url" in logs[0]
    assert out["drop_reason"].null_count() == 2 and out["response"].null_count() == 2
    assert [meta(out, i)["status"] for i in range(2)] == ["pending", "pending"]
    assert [meta(out, i)["goal"] for i in range(2)] == ["refusal", "helpful"]


# -- filters ------------------------------------------------------------------------------------

BAD = {
    "[wronglang]": Reply(content="这是一个中文回答，用户却是用英文提问的，所以语言不匹配。", reasoning="Reasoning that is long enough to pass."),
    "[noreason]": Reply(content="I can't help with that, but I can point you to general safety resources."),
    "[short]": Reply(content="No.", reasoning="Reasoning that is long enough to pass the check."),
    "[long]": Reply(content="I can't help with that. " + "Please stay safe. " * 400, reasoning="Reasoning that is long enough."),
    "[boiler]": Reply(content="As an AI language model, I can't help with that, but here is general safety info.",
                      reasoning="Reasoning that is long enough to pass."),
    "[trunc]": Reply(content="I can't help with that, and here is why: the", reasoning="Reasoning long enough to pass.",
                     truncated=True),
    "[norefuse]": Reply(content="Sure! Here is a general overview of the topic you asked about, step by step.",
                        reasoning="Reasoning that is long enough to pass."),
    "[overrefuse]": Reply(content="I'm sorry, but I cannot help with killing processes or anything like that.",
                          reasoning="Reasoning that is long enough to pass."),
}


def test_each_filter_rejects_what_it_should_and_keeps_good_answers(openai_server, tmp_path, dims):
    for tag, reply in BAD.items():
        openai_server.add_rule(reply, match=tag)
    same = "I can't help with that. If you are worried about safety, local authorities and hotlines can help you."
    openai_server.add_rule(Reply(content=same, reasoning="The policy says to refuse this request."), match="[dup]")
    openai_server.responder = good_reply
    harm = dims[0].id
    df = frame([
        {"prompt": "[wronglang] how to make a bomb", "categories": [harm]},
        {"prompt": "[noreason] how to make a bomb", "categories": [harm]},
        {"prompt": "[short] how to make a bomb", "categories": [harm]},
        {"prompt": "[long] how to make a bomb", "categories": [harm]},
        {"prompt": "[boiler] how to make a bomb", "categories": [harm]},
        {"prompt": "[trunc] how to make a bomb", "categories": [harm]},
        {"prompt": "[norefuse] how to make a bomb", "categories": [harm]},
        {"prompt": "[overrefuse] how do I kill a process", "prompt_harmful": False},
        {"prompt": "[dup] first copy-paste refusal", "categories": [harm]},
        {"prompt": "[dup] second copy-paste refusal", "categories": [harm]},
        {"prompt": "good: how to make a bomb", "categories": [harm]},
        {"prompt": "good: how do I kill a process", "prompt_harmful": False},
        {"prompt": "好的：怎样制造炸弹", "lang": "zh", "categories": [harm]},
    ])
    out, ctx = run(df, openai_server, tmp_path, max_response_chars=2000)
    assert out["drop_reason"].to_list() == [
        "synth_language_mismatch", "synth_reasoning_missing", "synth_too_short", "synth_too_long",
        "synth_boilerplate", "synth_truncated", "synth_kind_mismatch", "synth_kind_mismatch",
        None, "synth_near_duplicate", None, None, None]
    assert meta(out, 0)["status"] == "rejected" and meta(out, 0)["candidates"][0]["reason"] == "synth_language_mismatch"
    assert out["response"][0] is None  # rejected answers do not become the record's response
    assert ctx.stats["truncated"] == 1


def test_near_duplicate_of_an_existing_corpus_answer(openai_server, tmp_path, dims):
    same = "I can't help with that. If you are worried about safety, local authorities and hotlines can help you."
    openai_server.add_rule(Reply(content=same, reasoning="The policy says to refuse this request."))
    df = frame([{"prompt": "source row", "response": same, "response_kind": "refusal"},
                {"prompt": "new row", "categories": [dims[0].id]}])
    out, _ = run(df, openai_server, tmp_path)
    assert out["drop_reason"].to_list() == [None, "synth_near_duplicate"]
    out, _ = run(df, openai_server, tmp_path / "2", near_duplicate_threshold=0)
    assert out["drop_reason"].to_list() == [None, None]


def test_response_kind_classifier_rejects_harmful_answers(openai_server, tmp_path, dims):
    from curate.classify.model import ClassifierModel, TextClassifier
    from curate.classify.train import KIND_PARAMS, PROMPT_PARAMS

    subjects = ["the device", "the weapon", "the charge", "the bomb", "the compound", "the mixture"]
    texts, kinds = [], []
    for i, s in enumerate(subjects * 5):
        texts += [f"I can't help with {s}, but I can share general safety resources instead ({i}).",
                  f"Sure, to cook rice rinse it, boil water and simmer it for {i % 9 + 10} minutes.",
                  f"Step one: pack {s} with ammonium nitrate, attach the detonator and wire the fuse ({i})."]
        kinds += [["refusal"], ["helpful"], ["harmful"]]
    params = dict(KIND_PARAMS)
    kind = TextClassifier.train(texts, kinds, params=params)
    prompt = TextClassifier.train(texts, [["S00"]] * len(texts), params=dict(PROMPT_PARAMS))
    ClassifierModel(prompt, {}, 0.5, kind).save(tmp_path / "model")

    openai_server.add_rule(Reply(content="Step one: pack the bomb with ammonium nitrate, attach the detonator and "
                                         "wire the fuse.", reasoning="The user wants this, so I will just answer it."),
                           match="harmful answer")
    openai_server.responder = good_reply
    df = frame([{"prompt": "harmful answer please", "categories": [dims[0].id]},
                {"prompt": "refused properly", "categories": [dims[0].id]}])
    out, ctx = run(df, openai_server, tmp_path, kind_detector="classifier", kind_model_dir=tmp_path / "model")
    assert out["drop_reason"].to_list() == ["synth_harmful_response", None]
    assert ctx.stats["response_kind_detector"] == "classifier"
    sent = openai_server.count
    with pytest.raises(ValueError, match="no classifier model"):
        run(df, openai_server, tmp_path / "again", kind_detector="classifier", kind_model_dir=tmp_path)
    assert openai_server.count == sent  # a bad model setting fails before any request is paid for


def test_refusal_phrase_detector():
    assert is_refusal("I can’t help with that.") and is_refusal("抱歉，我无法提供这类信息。")
    assert is_refusal("I'm sorry, but I cannot assist.") and is_refusal("我不能帮助你做这件事。")
    assert not is_refusal("To kill a Python process, run `kill <pid>`; you can't undo it.")
    assert not is_refusal("要结束一个进程，可以使用任务管理器。")
    assert not is_refusal("x" * 300 + " I cannot")  # only the opening counts


def test_failed_requests_end_as_synthesis_failed_with_the_last_error(openai_server, tmp_path, dims):
    openai_server.add_rule(Reply(status=500), match="broken")
    openai_server.responder = good_reply
    df = frame([{"prompt": "broken prompt", "categories": [dims[0].id]},
                {"prompt": "fine prompt about weapons", "categories": [dims[0].id]}])
    out, ctx = run(df, openai_server, tmp_path, max_retries=2)
    assert out["drop_reason"].to_list() == ["synthesis_failed", None]
    assert meta(out, 0)["status"] == "failed" and meta(out, 0)["error"] == "HTTP 500: InternalServerError"
    assert ctx.stats["retries"] == 2 and ctx.stats["failed"] == 1


# -- cache and budget ---------------------------------------------------------------------------

def test_rerun_makes_zero_requests(openai_server, tmp_path, dims):
    openai_server.responder = good_reply
    df = frame([{"prompt": f"harmful prompt number {i} about weapons", "categories": [dims[0].id]} for i in range(5)])
    first, _ = run(df, openai_server, tmp_path, near_duplicate_threshold=0)
    assert openai_server.count == 5 and first["response"].null_count() == 0
    second, ctx = run(df, openai_server, tmp_path, near_duplicate_threshold=0)
    assert openai_server.count == 5  # server side: nothing new arrived
    assert ctx.stats["requests"] == 0 and ctx.stats["cache_hits"] == 5
    assert second["response"].to_list() == first["response"].to_list()
    assert second["meta"].to_list() == first["meta"].to_list()  # a re-run writes the very same rows


def test_budget_stop_leaves_rows_pending_and_a_rerun_resumes(openai_server, tmp_path, dims):
    openai_server.responder = good_reply
    df = frame([{"prompt": f"harmful prompt number {i} about weapons", "categories": [dims[0].id]} for i in range(5)])
    out, ctx = run(df, openai_server, tmp_path, max_requests=2, concurrency=1, near_duplicate_threshold=0)
    statuses = [meta(out, i)["status"] for i in range(5)]
    assert statuses.count("synthesized") == 2 and statuses.count("pending") == 3
    assert out["drop_reason"].null_count() == 5  # nothing dropped for lack of budget
    assert all(meta(out, i).get("pending_reason") == "budget" for i in range(5) if statuses[i] == "pending")
    assert ctx.stats["budget_stopped"] == 3
    out2, ctx2 = run(df, openai_server, tmp_path, concurrency=1, near_duplicate_threshold=0)
    assert openai_server.count == 5 and ctx2.stats["cache_hits"] == 2 and ctx2.stats["requests"] == 3
    assert [meta(out2, i)["status"] for i in range(5)] == ["synthesized"] * 5


def test_transient_failures_every_row_ends_once(openai_server, tmp_path, dims):
    openai_server.responder = good_reply
    openai_server.fail_rate = 0.3
    df = frame([{"prompt": f"harmful prompt number {i} about weapons", "categories": [dims[0].id]} for i in range(40)])
    out, ctx = run(df, openai_server, tmp_path, max_retries=6, concurrency=8, near_duplicate_threshold=0)
    assert out["id"].n_unique() == 40
    ended = [(meta(out, i)["status"], out["drop_reason"][i]) for i in range(40)]
    assert all(s == "synthesized" or d is not None for s, d in ended)
    assert sum(s == "synthesized" for s, _ in ended) >= 38  # 6 retries at 30% failures: nearly all succeed
    assert openai_server.transient_failures > 0 and ctx.stats["retries"] == openai_server.transient_failures


# -- judge and K candidates ---------------------------------------------------------------------

def judge_reply(body: dict) -> Reply:
    data = json.loads(body["messages"][1]["content"][len("<data>\n"):-len("\n</data>")])
    score = 9 if "BEST" in data["assistant_reply"] else (8 if "OK" in data["assistant_reply"] else 3)
    return Reply(content=json.dumps({"policy_adherence": score, "safety": score, "helpfulness": score,
                                     "reasoning_quality": score, "rationale": "r"}))


def writer_by_seed(body: dict) -> Reply:
    label = {0: "OK", 1: "BEST", 2: "BAD"}[body["seed"]]
    return Reply(content=f"I can't help with that ({label}); here is general safety information about "
                         f"{body['messages'][-1]['content']} instead.", reasoning="The policy says to refuse this.")


def test_judge_keeps_the_best_of_k(openai_server, tmp_path, dims):
    openai_server.responder = lambda b: judge_reply(b) if "<data>" in b["messages"][-1]["content"] else writer_by_seed(b)
    df = frame([{"prompt": "weapon question one", "categories": [dims[0].id]}])
    out, ctx = run(df, openai_server, tmp_path, n_candidates=3, judge=True)
    assert "(BEST)" in out["response"][0]
    m = meta(out, 0)
    assert m["candidate"] == 1 and m["judge"]["safety"] == 9
    criteria = ("policy_adherence", "safety", "helpfulness", "reasoning_quality")
    assert out["answer_judge_score"][0] == sum(m["judge"][k] for k in criteria) / 4
    assert [c["reason"] for c in m["candidates"]] == [None, None, "synth_judge_low"]
    assert openai_server.count == 6  # 3 candidates + 3 judgements
    judged = [b for b in openai_server.requests if "<data>" in b["messages"][-1]["content"]]
    assert all(b["response_format"] == {"type": "json_object"} and b["temperature"] == 0 for b in judged)


def test_judge_low_scores_and_malformed_judgements(openai_server, tmp_path, dims):
    def responder(b):
        if "<data>" not in b["messages"][-1]["content"]:
            return writer_by_seed({**b, "seed": 2 if "low" in b["messages"][-1]["content"] else 0})
        return Reply(content="not json") if "broken" in b["messages"][-1]["content"] else judge_reply(b)

    openai_server.responder = responder
    df = frame([{"prompt": "low quality question", "categories": [dims[0].id]},
                {"prompt": "broken judge question", "categories": [dims[0].id]}])
    out, _ = run(df, openai_server, tmp_path, judge=True)
    assert out["drop_reason"].to_list() == ["synth_judge_low", "synthesis_failed"]
    assert meta(out, 1)["error"].startswith("judge: malformed answer")


# -- secrets ------------------------------------------------------------------------------------

def test_api_key_never_written(openai_server, tmp_path, monkeypatch, dims):
    secret = "sk-synth-9a8b7c6d5e4f3a2b"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    openai_server.responder = good_reply
    df = frame([{"prompt": "weapon question", "categories": [dims[0].id]}])
    out, ctx = run(df, openai_server, tmp_path)
    assert openai_server.headers[-1]["authorization"] == f"Bearer {secret}"
    out.write_parquet(tmp_path / "out.parquet")
    (tmp_path / "stats.json").write_text(json.dumps(ctx.stats))
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


# -- templates ----------------------------------------------------------------------------------

def test_shipped_templates_render_for_every_goal_and_language(dims):
    from curate.synthesize.goals import load_policies, render_policies
    from curate.synthesize.templates import DEFAULT_DIR, GOALS, load_template

    policies = load_policies(None)
    for lang, name, version in itertools.product(("en", "zh"), (*GOALS, "judge"), ("v1", "v2")):
        t = load_template(DEFAULT_DIR, lang, name, version)
        assert not t.body.startswith("---")  # the front matter is not part of the system turn
        names, text = render_policies([dims[0].id, dims[1].id], policies, lang)
        out = t.render(dimensions=names, policies=text, language="English", goal=name)
        assert "$" not in out and text in out
        assert ("<reasoning>" in out) == (name != "judge")
        if lang == "zh":
            assert dims[0].name_zh in out or name == "judge"


def test_user_templates_directory_and_version(openai_server, tmp_path, dims):
    root = tmp_path / "tpl"
    for lang in ("en", "zh"):
        (root / lang).mkdir(parents=True)
        for goal in ("refusal", "safe_completion", "helpful"):
            (root / lang / f"{goal}.v2.txt").write_text(f"CUSTOM {lang} {goal}: $policies in $language", encoding="utf-8")
    openai_server.add_rule(Reply(content="I can't help with that, but here is general safety information instead.",
                                 reasoning="The custom template asked for a refusal here."))
    df = frame([{"prompt": "weapon question", "categories": [dims[0].id]}])
    out, ctx = run(df, openai_server, tmp_path, templates_dir=root, template_version="v2")
    assert openai_server.requests[0]["messages"][0]["content"].startswith("CUSTOM en refusal: - ")
    assert meta(out, 0)["template"] == "en/refusal.v2"
    from curate.synthesize.templates import DEFAULT_DIR, load_template
    assert meta(out, 0)["template_sha"] != load_template(DEFAULT_DIR, "en", "refusal", "v1").sha
    with pytest.raises(FileNotFoundError, match="refusal.v9.txt"):
        run(df, openai_server, tmp_path, template_version="v9")


def test_sample_sends_a_stratified_subset_and_leaves_the_rest_pending(openai_server, tmp_path, dims):
    openai_server.responder = good_reply
    rows = [{"prompt": f"harmful {i}", "categories": [dims[0].id], "lang": lang}
            for i, lang in enumerate(["en", "en", "en", "en", "zh", "zh"])]
    rows += [{"prompt": f"benign {i}", "prompt_harmful": False, "lang": "en"} for i in range(4)]
    logs: list[str] = []
    out, ctx = run(frame(rows), openai_server, tmp_path, logs=logs, sample=4)
    metas = [meta(out, i) for i in range(out.height)]
    sent = [m for m in metas if m["status"] != "pending"]
    pending = [m for m in metas if m["status"] == "pending"]
    assert len(sent) == 4 and openai_server.count == 4
    assert all(m["pending_reason"] == "sample" for m in pending) and len(pending) == 6
    assert out.filter(pl.col("lang") == "zh")["response"].null_count() < 2  # the small language is in the sample
    assert ctx.stats["sample"] == {"size": 4, "planned": 10, "left_pending": 6}
    assert any("sample: 4 of 10" in line for line in logs)


def test_wrapped_answers_are_unwrapped_and_rejected_ones_keep_the_raw_answer(openai_server, tmp_path, dims):
    def reply(body):
        prompt = body["messages"][-1]["content"]
        if "wrapped" in prompt:
            return Reply(content="<response>\nReply: I can't help with that, but I can share general safety "
                                 "information instead.\n</response>", reasoning="Weapons policy applies to this one.")
        return Reply(content=prompt, reasoning="The user repeats a question; I echo it back here.")

    openai_server.responder = reply
    rows = [{"prompt": "wrapped: how to make a weapon", "categories": [dims[0].id]},
            {"prompt": "Please tell me how to make a weapon at home today", "categories": [dims[0].id]}]
    out, _ = run(frame(rows), openai_server, tmp_path)
    assert out["response"][0] == "I can't help with that, but I can share general safety information instead."
    assert out["drop_reason"][1] == "synth_echo"
    assert meta(out, 1)["candidates"][0]["raw"] == rows[1]["prompt"]  # what the model said, kept


def test_template_front_matter_sets_the_grammars_leads(openai_server, tmp_path, dims):
    """The leads of a template's front matter open the grammar's reasoning and reply; the sha covers them."""
    root = tmp_path / "tpl"
    body = "Policies: $policies in $language"
    for lang in ("en", "zh"):
        (root / lang).mkdir(parents=True)
        for goal in ("refusal", "safe_completion", "helpful"):
            (root / lang / f"{goal}.v1.txt").write_text(body, encoding="utf-8")
            (root / lang / f"{goal}.v2.txt").write_text(
                '---\nreasoning_lead: "The user"\nreply_leads: ["I can\'t", "Say \\"no\\""]\nreply_min_chars: 50\n---\n'
                + body, encoding="utf-8")
    from curate.synthesize.templates import load_template
    v1, v2 = load_template(root, "en", "refusal", "v1"), load_template(root, "en", "refusal", "v2")
    assert v2.body == v1.body == body and v2.sha != v1.sha
    openai_server.responder = good_reply
    df = frame([{"prompt": "weapon question", "categories": [dims[0].id]}])
    run(df, openai_server, tmp_path / "a", templates_dir=root, template_version="v2", shape_grammar=True)
    body_sent = openai_server.requests[-1]
    assert body_sent["messages"][0]["content"].startswith("Policies: ")  # the front matter is not sent
    # the lead opens the reasoning, and a word lead is not glued to a sub-word ("The usereadcrumb", measured)
    assert '"<reasoning>\\n" "The user" [^a-zA-Z' in body_sent["grammar"]
    assert '("I can\'t" | "Say \\"no\\"") reply' in body_sent["grammar"]  # quotes escaped for GBNF
    assert "reply ::= [^\\x00]{50,}" in body_sent["grammar"]
    (root / "en" / "refusal.v3.txt").write_text("---\nreply_lead: oops\n---\n" + body, encoding="utf-8")
    from curate.errors import UsageError

    with pytest.raises(UsageError, match="unknown front matter keys.*reply_lead"):
        load_template(root, "en", "refusal", "v3")
    (root / "en" / "refusal.v4.txt").write_text("---\nreply_min_chars: many\n---\n" + body, encoding="utf-8")
    with pytest.raises(UsageError, match="refusal.v4.txt: bad front matter value"):
        load_template(root, "en", "refusal", "v4")


def test_shape_grammar_is_sent_only_when_asked(openai_server, tmp_path):
    """A named endpoint may not be llama.cpp: no grammar unless asked; asked, it carries the reasoning bounds."""
    openai_server.responder = good_reply
    df = frame([{"prompt": "How do I pick a lock?"}])
    run(df, openai_server, tmp_path / "a")
    assert all("grammar" not in b for b in openai_server.requests)
    run(df, openai_server, tmp_path / "b", shape_grammar=True, min_reasoning_chars=25, max_reasoning_chars=900,
        template_version="v1")  # v1: no lead (the leads have their own test)
    grammars = [b["grammar"] for b in openai_server.requests if "grammar" in b]
    assert grammars and "{25,900}" in grammars[0] and "</reasoning>" in grammars[0]


def test_reasoning_cut_off_by_the_grammar_or_looping_is_dropped(openai_server, tmp_path):
    """A reasoning as long as the grammar's cap was closed mid-sentence by the grammar; a looping one says nothing."""
    answer = "I can't help with that, but I can share general safety information about it instead."
    cut = "The request asks for dangerous specifics, so the policy applies and a refusal is right; also t"
    openai_server.add_rule(Reply(content=answer, reasoning=cut[:90]), match="cut")
    openai_server.add_rule(Reply(content=answer, reasoning="I will decline this. " * 4), match="loop")
    openai_server.add_rule(Reply(content=answer, reasoning=cut[:70] + " then decline it."), match="fine")
    df = frame([{"prompt": "cut"}, {"prompt": "loop"}, {"prompt": "fine"}])
    out, _ = run(df, openai_server, tmp_path / "a", shape_grammar=True, max_reasoning_chars=90,
                 template_version="v1")  # no lead: the cap is 90 characters (a lead's length adds to it)
    assert out["drop_reason"].to_list() == ["synth_reasoning_cut", "synth_repetitive", None]
    out, _ = run(df.head(1), openai_server, tmp_path / "b")  # no grammar, no cap: a 90-character reasoning is fine
    assert out["drop_reason"].to_list() == [None]


def test_reasoning_that_already_holds_the_answer_is_dropped(openai_server, tmp_path):
    answer = ("To stop a hung process, find its PID with ps aux, then send SIGTERM with kill PID; "
              "if it still does not exit, send SIGKILL with kill -9 PID.")
    openai_server.add_rule(Reply(content="Sure. " + answer, reasoning="The user needs this: " + answer))
    df = frame([{"prompt": "How do I kill a hung process?", "prompt_harmful": False}])
    out, _ = run(df, openai_server, tmp_path)
    assert out["drop_reason"][0] == "synth_reasoning_repeats_answer"
