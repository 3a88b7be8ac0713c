"""What each record needs from synthesis, decided from its labels and the taxonomy's response policies.

- ``refusal``: the prompt is harmful and at least one of its dimensions says "refuse" (or it has none).
- ``safe_completion``: harmful, but every dimension's response mode is ``safe_complete`` or ``resources``
  (e.g. self-harm: answer with care and point to help), or is in the configured list.
- ``helpful``: the prompt is not harmful (benign look-alikes such as XSTest's safe prompts).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from curate.taxonomy import SAFE

SAFE_MODES = frozenset({"safe_complete", "resources"})


@dataclass(frozen=True)
class DimensionPolicy:
    id: str
    name_en: str
    name_zh: str
    policy_en: str
    policy_zh: str
    response_mode: str


def load_policies(taxonomy_path: Path | None) -> dict[str, DimensionPolicy]:
    """The taxonomy's harm dimensions (curate.taxonomy), reduced to what synthesis needs."""
    from curate.taxonomy import Taxonomy

    taxonomy = Taxonomy.load(taxonomy_path)
    return {d.id: DimensionPolicy(d.id, d.name_en, d.name_zh, d.policy_en, d.policy_zh, d.response_mode)
            for d in taxonomy.dimensions}


def goal_for(prompt_harmful: bool | None, categories: Iterable[str], policies: dict[str, DimensionPolicy],
             safe_completion_categories: frozenset[str] = frozenset()) -> str | None:
    """The synthesis goal, or None when the record is not labelled harmful/safe yet."""
    if prompt_harmful is None:
        return None
    if not prompt_harmful:
        return "helpful"
    cats = [c for c in categories if c in policies and c != SAFE]
    if cats and all(c in safe_completion_categories or policies[c].response_mode in SAFE_MODES for c in cats):
        return "safe_completion"
    return "refusal"


def render_policies(categories: Iterable[str], policies: dict[str, DimensionPolicy], lang: str) -> tuple[str, str]:
    """(dimension names, bulleted policies) in the template's language, for the record's dimensions."""
    dims = [policies[c] for c in sorted(set(categories)) if c in policies and c != SAFE]
    if not dims:
        return ("无" if lang == "zh" else "none"), ("- （无特定维度）" if lang == "zh" else "- (no specific area)")
    if lang == "zh":
        return "、".join(d.name_zh for d in dims), "\n".join(f"- {d.name_zh}（{d.id}）：{d.policy_zh}" for d in dims)
    return ", ".join(d.name_en for d in dims), "\n".join(f"- {d.name_en} ({d.id}): {d.policy_en}" for d in dims)
