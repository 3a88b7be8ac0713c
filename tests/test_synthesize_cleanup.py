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
    template = load_template(DEFAULT_DIR, case["lang"], case["goal"], "v1")
    reason = check_candidate(comp, case["lang"], bounds, tuple(p.lower() for p in DEFAULT_BOILERPLATE),
                             prompt=case["prompt"], goal=case["goal"], instruction_heads=template.instruction_heads)
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
