"""Quality checks on one synthesized candidate; each failure names its own drop reason.

Order matters only for which reason a bad candidate is reported under: the cheapest, most basic
failure first (cut off, no reasoning, wrong length), then language and boilerplate. The answer-kind
check (kind.py), the judge (judge.py) and near-duplicates (neardup.py) come after these.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from curate.llm import Completion
from curate.llm.reasoning import has_unclosed_reasoning
from curate.synthesize.cleanup import (echoes_prompt, has_leftover_markup, has_stray_cjk, is_repetitive,
                                      quotes_instructions, reasoning_contradicts, reasoning_repeats_answer,
                                      talks_about_the_request)
from curate.synthesize.refusal import is_refusal
from curate.text import base_language, detect_lang

# Phrases that mark an answer as model boilerplate or a leaked template/control token, not as a reply.
DEFAULT_BOILERPLATE = (
    "as an ai language model", "as a large language model", "i am an ai language model", "my knowledge cutoff",
    "as of my last update", "as of my last knowledge update", "i don't have personal opinions",
    "作为一个人工智能语言模型", "作为一个ai语言模型", "作为ai语言模型", "作为一个大型语言模型", "作为一个语言模型",
    "<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|eot_id|>", "</s>", "<think>", "</think>", "<reasoning>",
    "</reasoning>", "[insert", "lorem ipsum",
    "the reply can be:", "the reply could be:", "回复可以是：",  # talk about the reply instead of it (measured)
    "as an ai assistant", "作为一个ai助手", "作为ai助手", "作为一个人工智能助手",  # measured on the embedded model
    "this is training data", "这是训练数据", "根据我的训练数据",  # the template's own words leaking (measured)
)


# A slot left for someone to fill in: "[Your Name]", "[孩子姓名]" (measured: a letter to a child opened "亲爱的[孩子姓名]").
# Not code: an index such as row["name"] follows a name and holds quotes.
_PLACEHOLDER = re.compile(r"(?<![A-Za-z0-9_\])])[\[【][^\]】\n\"']{0,12}(?:name|姓名|名字|名称)[^\]】\n\"']{0,6}[\]】]", re.I)


@dataclass(frozen=True)
class Bounds:
    min_response_chars: int
    max_response_chars: int
    min_reasoning_chars: int


def check_candidate(comp: Completion, lang: str, bounds: Bounds, blocklist: tuple[str, ...], *, prompt: str = "",
                    goal: str = "", instruction_heads: tuple[str, ...] = (),
                    reasoning_cap: int | None = None) -> str | None:
    """The drop reason for this candidate (its answer already unwrapped by cleanup.clean_answer), or None
    when it passes the local checks. ``reasoning_cap``: the length at which the shape grammar cuts the reasoning
    off (curate/llm/reasoning.py), when it was used."""
    if comp.truncated:
        return "synth_truncated"
    if has_unclosed_reasoning(comp.content):  # stopped on its own inside the block: the reply is mixed into it
        return "synth_unclosed_reasoning"
    reasoning = (comp.reasoning or "").strip()
    answer = comp.answer.strip()
    if len(reasoning) < bounds.min_reasoning_chars or reasoning == answer:
        return "synth_reasoning_missing"
    if reasoning_cap and len(reasoning) >= reasoning_cap - 1:  # closed mid-sentence by the grammar (7 of 34 kept rows)
        return "synth_reasoning_cut"
    if is_repetitive(reasoning):
        return "synth_repetitive"
    if reasoning_repeats_answer(reasoning, answer, prompt):
        return "synth_reasoning_repeats_answer"
    if len(answer) < bounds.min_response_chars:
        return "synth_too_short"
    if len(answer) > bounds.max_response_chars:
        return "synth_too_long"
    if not same_language(answer, lang) or (base_language(lang) == "en" and has_stray_cjk(reasoning + answer, prompt)):
        return "synth_language_mismatch"
    low = answer.lower()
    if any(phrase in low for phrase in blocklist) or _PLACEHOLDER.search(answer):
        return "synth_boilerplate"
    if has_leftover_markup(answer):
        return "synth_markup"
    if echoes_prompt(answer, prompt):
        return "synth_echo"
    if quotes_instructions(answer, instruction_heads):
        return "synth_quotes_instructions"
    if talks_about_the_request(answer, prompt):
        return "synth_meta_talk"
    if is_repetitive(answer):
        return "synth_repetitive"
    if reasoning_contradicts(reasoning, is_refusal(answer), goal):
        return "synth_reasoning_contradicts"
    return None


def same_language(text: str, lang: str | None) -> bool:
    want = base_language(lang)
    if not want or want == "und":
        return True  # nothing to compare against
    return detect_lang(text) == want
