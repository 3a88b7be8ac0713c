"""The LLM judge for rows the classifier is unsure about: it is asked the harmful flag first (a 1.5B model was found
right on the flag 12 of 14 times while its dimension choice was near chance, issue 21); the row's dimensions stay
the classifier's unless the judge's are asked for (``verdict_categories``). The taxonomy's definitions are in the
prompt; a JSON answer validated against ``JudgeVerdict`` (malformed answers are re-asked by the client, then
reported as failed and the classifier's labels are kept). Cache, budget, retries and rate limits come from ``curate.llm``.
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curate.llm import LLMConfig, LLMStats, Request, json_request, run_requests
from curate.llm.breaker import raise_if_unreachable
from curate.llm.structured import JsonMode

SYSTEM = """You check prompts for a safety training corpus. The question that matters most: is the user prompt
harmful, i.e. should a safe assistant decline or redirect it ("harmful": true), or is it fine to answer helpfully
("harmful": false)? Benign look-alikes (e.g. "how do I kill a Python process", history questions, asking how to
stay safe) are not harmful. A request that hides or enables harm to oneself (e.g. hiding an eating disorder from
people who try to help) is harmful. Judge the user prompt; use the reply only to decide the response kind.

If harmful, also name the harm dimension(s) it seeks, contains or promotes, from this list. Prefer the specific
dimension: {generic} is only for illegal or unethical acts that no other dimension covers.

Dimensions:
{dimensions}

response_kind (only when a reply is given): "refusal" (declines), "safe_completion" (helps with the safe part,
with care or resources), "helpful" (answers a benign request), "harmful" (complies with a harmful request)."""


class JudgeVerdict(BaseModel):
    model_config = ConfigDict(extra="ignore")

    harmful: bool
    categories: list[str] = Field(default_factory=list, description="Harm dimension ids, e.g. [\"S05\"]; [] if safe.")
    response_kind: Literal["refusal", "safe_completion", "helpful", "harmful"] | None = None
    rationale: str = Field("", max_length=2000)

    @field_validator("categories")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        return sorted({v.strip().upper() for v in value if v and v.strip()})


def system_prompt(taxonomy) -> str:
    lines = [f"- {d.id} {d.name_en} / {d.name_zh}: {d.definition_en}" + (f" {d.scope_en}" if d.scope_en else "")
             for d in taxonomy.dimensions]
    return SYSTEM.format(dimensions="\n".join(lines), generic=", ".join(taxonomy.generic) or "the catch-all")


def judge_request(system: str, prompt: str, response: str | None, *, mode: JsonMode, model: str | None) -> Request:
    data: dict[str, Any] = {"user_prompt": prompt[:6000]}
    if response:
        data["assistant_reply"] = response[:3000]
    return json_request(system, data, JudgeVerdict, mode=mode, model=model,
                        params={"temperature": 0.0, "max_tokens": 400})


def check_verdict(verdict: JudgeVerdict, known_ids: set[str]) -> str | None:
    """A verdict the schema accepts can still name dimensions the taxonomy lacks: say so (None = fine)."""
    unknown = [c for c in verdict.categories if c not in known_ids]
    if unknown:
        return f"judge named unknown dimensions {unknown}"
    return None  # harmful without a dimension is a usable answer: the judge is asked the flag first


def verdict_categories(verdict: JudgeVerdict, predicted: Sequence[str], best: str, use_judge_dimensions: bool) -> list[str]:
    """A judged row's dimensions: none when the judge says safe; when harmful, the judge's own dimensions only if
    asked for (and given), else the classifier's prediction, else the classifier's best harm dimension."""
    if not verdict.harmful:
        return []
    if use_judge_dimensions and verdict.categories:
        return list(verdict.categories)
    return [c for c in predicted if c != "S00"] or [best]


def pick_candidates(harm_score: np.ndarray, thresholds: np.ndarray, margin: float, eligible: Sequence[bool],
                    max_rows: int | None = None) -> list[int]:
    """Rows for the judge: eligible rows whose harm score is within ``margin`` of their own threshold, the least
    confident (nearest the threshold) first, at most ``max_rows``."""
    distance = np.abs(np.asarray(harm_score) - np.asarray(thresholds))
    rows = sorted((i for i in range(len(distance)) if eligible[i] and distance[i] < margin), key=lambda i: distance[i])
    return rows if max_rows is None else rows[:max_rows]


def ask_judge(config: LLMConfig, taxonomy, prompts: Sequence[str], responses: Sequence[str | None], *,
              mode: JsonMode, stats: LLMStats | None = None,
              on_done: Callable[[int, Any], None] | None = None) -> list[tuple[JudgeVerdict | None, str | None, str]]:
    """One judge request per prompt; per row (verdict, problem, status): a checked verdict and None, or None and
    what went wrong (an error, a malformed answer, an unknown dimension), with the client's status."""
    system = system_prompt(taxonomy)
    requests = [judge_request(system, p, r, mode=mode, model=None) for p, r in zip(prompts, responses)]
    outcomes, _ = run_requests(config, requests, on_done=on_done, stats=stats)
    raise_if_unreachable(outcomes, config.base_url, f"{len(requests):,} rows to judge")  # not judged: not failed
    known = set(taxonomy.harm_ids)
    out = []
    for outcome in outcomes:
        problem = outcome.error if not outcome.ok else check_verdict(outcome.parsed, known)
        out.append((None if problem is not None else outcome.parsed, problem, outcome.status))
    return out
