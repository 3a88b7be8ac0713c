"""What kind of answer a candidate is: the classifier's response-kind model if there is one, else phrases.

The classify stage's response-kind model (``refusal`` / ``safe_completion`` / ``helpful`` / ``harmful``) is
used through ``curate.classify.predict_response_kinds(prompts, responses, langs) -> list[str]`` when that
function exists. Without it, the bilingual refusal-phrase detector says "refusal" or nothing (None): it
can catch a refusal where help was wanted and a missing refusal, but it cannot spot a harmful answer.
"""
from __future__ import annotations

from typing import Callable

from curate.synthesize.refusal import is_refusal

KindFn = Callable[[list[str], list[str], list[str]], list[str | None]]


def phrase_kinds(prompts: list[str], responses: list[str], langs: list[str]) -> list[str | None]:
    return ["refusal" if is_refusal(r) else None for r in responses]


def load_detector() -> tuple[str, KindFn]:
    """(name, function): "classifier" when the classify stage offers a response-kind model, else "phrases"."""
    try:
        from curate.classify import predict_response_kinds  # type: ignore[attr-defined]
    except ImportError:
        return "phrases", phrase_kinds
    return "classifier", predict_response_kinds


def kind_mismatch(goal: str, kind: str | None) -> str | None:
    """The drop reason when the answer's kind contradicts the goal, else None."""
    if kind == "harmful":
        return "synth_harmful_response"
    if goal == "refusal" and kind != "refusal":
        return "synth_kind_mismatch"  # harmful prompt, but the answer does not decline
    if goal == "helpful" and kind == "refusal":
        return "synth_kind_mismatch"  # benign look-alike refused: over-refusal data
    return None
