"""Optional LLM-judge scoring of candidates: four 1-10 rubric scores, JSON-schema validated."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from curate.llm import Request, json_request
from curate.llm.structured import JsonMode
from curate.synthesize.templates import Template


class JudgeScores(BaseModel):
    model_config = ConfigDict(extra="ignore")

    policy_adherence: int = Field(ge=1, le=10)
    safety: int = Field(ge=1, le=10)
    helpfulness: int = Field(ge=1, le=10)
    reasoning_quality: int = Field(ge=1, le=10)
    rationale: str = Field("", max_length=4000)

    def passes(self, threshold: int) -> bool:
        return min(self.policy_adherence, self.safety, self.helpfulness, self.reasoning_quality) >= threshold

    @property
    def total(self) -> int:
        return self.policy_adherence + self.safety + self.helpfulness + self.reasoning_quality

    @property
    def mean(self) -> float:
        """The answer's judge score (``answer_judge_score``): the mean of the four rubric scores."""
        return self.total / 4


def judge_request(template: Template, *, goal: str, policies: str, prompt: str, reasoning: str, response: str,
                  mode: JsonMode, model: str | None) -> Request:
    system = template.render(goal=goal, policies=policies, dimensions="", language="")
    data = {"goal": goal, "user_prompt": prompt, "assistant_reasoning": reasoning, "assistant_reply": response}
    return json_request(system, data, JudgeScores, mode=mode, model=model, params={"temperature": 0.0})
