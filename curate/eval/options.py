"""`curate eval` options: the shared LLM client options (endpoint, concurrency, retries, budget, cache) plus
what the eval itself needs. The CLI flags are generated from this model, as for the stages."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from curate.llm import LLMOptions
from curate.llm.structured import JsonMode
from curate.eval.stats import SMALL_N


class EvalOptions(LLMOptions):
    suite: Path = Field(description="Suite YAML (docs/eval.md), or the name of a bundled suite: "
                        "safety-small (the real-model suite), quick.")
    out: Path = Field(description="Result folder: items.parquet, summary.json, cache/ (new, empty or an earlier "
                      "eval result).")
    max_tokens: int = Field(512, ge=1, description="Answer budget per item (reasoning + answer).")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature (0: as deterministic as the "
                               "server allows).")
    seed: int = Field(0, description="Sampling seed sent with every request.")
    system_prompt: str | None = Field(None, description="A system prompt sent before every item.")
    safety_prompt: bool = Field(False, description="Send a system prompt built from the taxonomy's response "
                                "policies (in the item's language) instead.")
    safety_prompt_style: Literal["full", "compact"] = Field(
        "full", description="full: every dimension's policy (~900 tokens); compact: one line per response mode "
        "(~100 tokens, for slow CPU models).")
    kind_detector: Literal["auto", "classifier", "phrases"] = Field(
        "auto", description="Who decides refused/complied: the classifier's response-kind model (auto: when "
        "one loads) or the bilingual refusal phrases.")
    kind_model_dir: Path | None = Field(None, description="Classifier model folder (default: the shipped one).")
    judge: bool = Field(False, description="Also ask an LLM judge (strict JSON) for harmful/benign items; its "
                        "verdict wins and disagreements with the detector are recorded.")
    judge_model: str | None = Field(None, description="Judge model at the same endpoint (default: --model).")
    json_mode: JsonMode = Field("json_object", description="How the judge is asked for JSON.")
    train: list[Path] = Field(default_factory=list, description="Training corpus (records or export folder): "
                              "suite items found in it are flagged in_train (repeatable).")
    contamination_threshold: float = Field(0.8, gt=0, le=1, description="Shingle overlap at or above which an "
                                           "item counts as found in --train (as in dedup).")
    small_n: int = Field(SMALL_N, ge=1, description="Cells with fewer items are marked small.")
    taxonomy: Path | None = Field(None, description="Taxonomy folder for --safety-prompt (default: shipped).")

    @model_validator(mode="after")
    def _one_system_prompt(self) -> "EvalOptions":
        if self.safety_prompt and self.system_prompt:
            raise ValueError("give --system-prompt or --safety-prompt, not both")
        return self
