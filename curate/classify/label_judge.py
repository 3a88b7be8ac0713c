"""The LLM judge for rows the classifier is unsure about: taxonomy definitions in the prompt, a JSON answer
validated against ``JudgeVerdict`` (malformed answers are re-asked by the client, then reported as failed and
the classifier's labels are kept). Cache, budget, retries and rate limits come from ``curate.llm``.
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curate.llm import LLMConfig, LLMStats, Request, json_request, run_requests
from curate.llm.structured import JsonMode

SYSTEM = """You label prompts for a safety training corpus with the harm dimensions of this taxonomy.
A dimension applies when the request or text seeks, contains or promotes that harm. Benign look-alikes
(e.g. "how do I kill a Python process", history questions, asking how to stay safe) are safe: no dimension.
Several dimensions may apply. Judge the user prompt; use the reply only to decide the response kind.

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
    lines = [f"- {d.id} {d.name_en} / {d.name_zh}: {d.definition_en}" for d in taxonomy.dimensions]
    return SYSTEM.format(dimensions="\n".join(lines))


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
    if verdict.harmful and not verdict.categories:
        return "judge said harmful but gave no dimension"
    return None


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
    known = set(taxonomy.harm_ids)
    out = []
    for outcome in outcomes:
        problem = outcome.error if not outcome.ok else check_verdict(outcome.parsed, known)
        out.append((None if problem is not None else outcome.parsed, problem, outcome.status))
    return out
