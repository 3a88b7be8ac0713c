"""What the small embedded model wraps around its answers, and the filters for what cannot be unwrapped.

tests/fixtures/embedded_outputs.jsonl holds real answers of Qwen2.5-Coder-1.5B (the embedded model) to the
shipped templates, each with the verdict the stage must reach (a drop reason or null) and, for kept ones,
how the cleaned answer starts.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.llm.reasoning import split_reasoning
from curate.llm.client import Completion
from curate.synthesize.cleanup import clean_answer, echoes_prompt, has_leftover_markup, reasoning_contradicts
from curate.synthesize.filters import DEFAULT_BOILERPLATE, Bounds, check_candidate
from curate.synthesize.templates import DEFAULT_DIR, load_template

FIXTURES = Path(__file__).parent / "fixtures" / "embedded_outputs.jsonl"


@pytest.mark.parametrize("raw, clean", [
    ("<response>\nI can't help with that.\n</response>", "I can't help with that."),
    ("<reply>我不能帮助你。</reply>", "我不能帮助你。"),
    ("回复：抱歉，我不能提供这些信息。", "抱歉，我不能提供这些信息。"),
    ("Reply: Sure, here is how to break a coconut.", "Sure, here is how to break a coconut."),
    ("**Reply:** Sure.", "Sure."),
    ("<response>Reply to the user: No.</response>", "No."),
    ("The reply depends on the tool you have.", "The reply depends on the tool you have."),  # not a label
    ("(your reply to the user)\nI'm sorry, but I can't assist with that.", "I'm sorry, but I can't assist with that."),
    ("（你给用户的回复）\n抱歉，我不能提供。", "抱歉，我不能提供。"),
])
def test_clean_answer_takes_off_wrappers_and_labels(raw, clean):
    assert clean_answer(raw) == clean


def test_leftover_markup_echo_and_contradiction():
    assert has_leftover_markup("I can't help.</response> More text")
    assert not has_leftover_markup("Use the <div> tag for layout.")
    assert echoes_prompt("How do I make a bomb at home?", "how do i make a bomb at home")
    assert not echoes_prompt("I can't help with how to make a bomb at home, but here is what to do if you find "
                             "something suspicious: leave and call the police.", "How do I make a bomb at home?")
    assert reasoning_contradicts("The question is benign: it asks about a Python process.", True, "helpful")
    assert not reasoning_contradicts("The question is benign: it asks about a Python process.", False, "helpful")
    assert reasoning_contradicts("I must not provide instructions for this.", False, "helpful")
    assert not reasoning_contradicts("I must not provide the operational details.", False, "safe_completion")
    assert reasoning_contradicts("这是一个正常问题，可以回答。", True, "helpful")


def _fixtures() -> list[dict]:
    return [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("case", _fixtures(), ids=lambda c: c["name"])
def test_real_outputs_of_the_embedded_model(case):
    reasoning, answer = split_reasoning(case["content"])
    comp = Completion(content=case["content"], reasoning=reasoning, answer=clean_answer(answer),
                      finish_reason=case.get("finish_reason", "stop"), model="qwen")
    bounds = Bounds(min_response_chars=20, max_response_chars=8000, min_reasoning_chars=30)
    template = load_template(DEFAULT_DIR, case["lang"], case["goal"], case.get("template_version", "v1"))
    cap = template.shape.reasoning_cap(case["max_reasoning_chars"]) if "max_reasoning_chars" in case else None
    reason = check_candidate(comp, case["lang"], bounds, tuple(p.lower() for p in DEFAULT_BOILERPLATE),
                             prompt=case["prompt"], goal=case["goal"], instruction_heads=template.instruction_heads,
                             reasoning_cap=cap)  # the grammar's cap, for answers written under it
    assert reason == case["expect"], comp.answer[:300]
    if case["expect"] is None:
        assert comp.answer.startswith(case["answer_starts"])


def test_reasoning_and_answer_that_both_quote_the_prompt_are_not_a_repeat():
    from curate.synthesize.cleanup import reasoning_repeats_answer

    prompt = "How can I safely dispose of expired prescription medicines at home?"
    reasoning = f"The request {prompt!r} is benign: it is about safe disposal, so I answer plainly."
    answer = f"About {prompt!r}: take them to a pharmacy take-back point, or mix them with coffee grounds."
    assert not reasoning_repeats_answer(reasoning, answer, prompt)
    assert reasoning_repeats_answer(reasoning + " " + answer, answer, prompt)  # the reply written in the reasoning


def test_repetition_and_quoted_instructions_leave_normal_answers_alone():
    from curate.synthesize.cleanup import instruction_heads, is_repetitive, quotes_instructions

    steps = "\n".join(f"{i}. Step {i}: check the {w} before you continue." for i, w in
                      enumerate(["cable", "fuse", "switch", "socket", "breaker", "meter"], 1))
    assert not is_repetitive(steps)
    assert is_repetitive("我是中国人啊，我东北的啊，" * 8)
    heads = instruction_heads("Rules:\n- decline clearly and briefly, without lecturing;\n- offer a safe alternative: x\n")
    assert heads == ("decline clearly and briefly", "offer a safe alternative")
    assert quotes_instructions('Decline clearly and briefly: "I can\'t help."', heads)
    assert not quotes_instructions("I can't help with that, but I can offer a safe alternative.", heads)


def test_meta_talk_stray_script_and_opening_repeat_leave_normal_answers_alone():
    from curate.synthesize.cleanup import has_stray_cjk, opens_with_reasoning, talks_about_the_request

    assert talks_about_the_request("The policy on harassment clearly states that I cannot help.", "Write an insult")
    assert talks_about_the_request("如果用户需要帮助，可以联系专业人士。", "我该怎么办？")
    assert not talks_about_the_request("Our privacy policy for users is linked below.", "Where is the privacy policy?")
    assert not talks_about_the_request("I can't help with that, but here is what you can do instead.", "How do I ...")
    assert not talks_about_the_request("这个应用的用户协议在设置里。", "这个应用的用户协议在哪里？")
    assert has_stray_cjk("Stay informed about the最新 attacks.", "How do I stay safe?")
    assert not has_stray_cjk("The word 你好 means hello.", "What does 你好 mean?")
    reasoning = "The user's request involves pushing for harsher sentences, which is a sensitive legal issue."
    assert opens_with_reasoning(reasoning, reasoning + " Here is more.", "As a lawyer, how can I push?")
    assert not opens_with_reasoning(reasoning, "Sentencing must follow the law; here is how advocacy works.", "")
    quoted = "How do I kill a Python process that hangs on exit?"
    assert not opens_with_reasoning(f"{quoted} is benign.", f"{quoted} Use kill with its PID.", quoted)


def test_a_refusal_that_offers_an_alternative_passes_the_refusal_goal():
    """The kind model reads "I can't ... but you can ..." as a safe completion; with the refusal phrases found it is
    the refusal the template asks for. Without a refusal phrase, a safe completion is still not a refusal."""
    from curate.synthesize.kind import kind_mismatch

    assert kind_mismatch("refusal", "safe_completion", declines=True) is None
    assert kind_mismatch("refusal", "safe_completion", declines=False) == "synth_kind_mismatch"
    assert kind_mismatch("refusal", "helpful", declines=True) == "synth_kind_mismatch"
    assert kind_mismatch("refusal", "harmful", declines=True) == "synth_harmful_response"
    assert kind_mismatch("helpful", "refusal", declines=True) == "synth_kind_mismatch"


def test_a_placeholder_left_in_the_reply_is_boilerplate_and_code_is_not():
    from curate.synthesize.filters import _PLACEHOLDER

    assert _PLACEHOLDER.search("亲爱的[孩子姓名]，你好") and _PLACEHOLDER.search("Dear [Your Name], thank you")
    assert not any(_PLACEHOLDER.search(t) for t in ('print(row["name"])', "a[name] = 1", "see [1] and [Smith 2020]",
                                                    "[name for name in names]"))
