"""What kind of answer a candidate is: the classifier's response-kind model if there is one, else phrases.

The classify stage's model (``curate classifier train``; the shipped default or ``kind_model_dir``) labels
answers ``refusal`` / ``safe_completion`` / ``helpful`` / ``harmful`` when it carries a response-kind part.
Without one, the bilingual refusal-phrase detector (refusal.py) says "refusal" or nothing (None): it catches
a refusal where help was wanted and a missing refusal, but it cannot spot a harmful answer.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from curate.errors import UsageError
from curate.synthesize.refusal import is_refusal

KindFn = Callable[[list[str], list[str], list[str]], list[str | None]]


def phrase_kinds(prompts: list[str], responses: list[str], langs: list[str]) -> list[str | None]:
    return ["refusal" if is_refusal(r) else None for r in responses]


def load_detector(choice: str = "auto", model_dir: Path | None = None) -> tuple[str, KindFn]:
    """(name, function). ``auto``: the classifier when a model with a response-kind part loads, else phrases."""
    if choice == "phrases":
        return "phrases", phrase_kinds
    model = _kind_model(model_dir)
    if model is None:
        if choice == "classifier":
            raise UsageError("kind_detector=classifier, but no classifier model with a response-kind part was found "
                             f"({model_dir or 'the default model'}); train one with `curate classifier train`")
        return "phrases", phrase_kinds

    def classify(prompts: list[str], responses: list[str], langs: list[str]) -> list[str | None]:
        return model.kinds(responses)[0]

    return "classifier", classify


def _kind_model(model_dir: Path | None):
    from curate.classify.model import ModelError, load_model

    try:
        model = load_model(model_dir)
    except (ModelError, OSError):
        return None
    return model if getattr(model, "kind", None) is not None else None


def kind_mismatch(goal: str, kind: str | None, declines: bool = False) -> str | None:
    """The drop reason when the answer's kind contradicts the goal, else None. ``declines``: the refusal-phrase
    detector found a refusal in the answer; with it a "safe_completion" passes as a refusal, because the refusal
    template asks for a safe alternative after the refusal (measured: the kind model, trained mostly on English,
    read such Chinese refusals as safe completions)."""
    if kind == "harmful":
        return "synth_harmful_response"
    if goal == "refusal" and kind != "refusal" and not (kind == "safe_completion" and declines):
        return "synth_kind_mismatch"  # harmful prompt, but the answer does not decline
    if goal == "helpful" and kind == "refusal":
        return "synth_kind_mismatch"  # benign look-alike refused: over-refusal data
    return None
