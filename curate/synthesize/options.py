"""Options of the synthesize stage (also its CLI flags and pipeline YAML keys)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from curate.config import InputPath
from curate.llm import LLMOptions


# With the embedded model (base_url: local) these replace the defaults the user did not set: a small model
# on a laptop answers a few rows a minute, and its answers rarely need more than ~600 tokens.
# Best of 2 with the embedded model: one candidate per row kept 62% (en) / 50% (zh) of 48 quickstart rows, two
# kept 75% / 75% (docs/embedded-model.md).
LOCAL_DEFAULTS = {"sample": 16, "max_tokens": 1024, "n_candidates": 2}


class SynthesizeOptions(LLMOptions):
    temperature: float = Field(0.6, ge=0, le=2, description="Sampling temperature of the writer model.")
    max_tokens: int = Field(4096, ge=16, description="Max tokens per answer (reasoning included).")
    sample: int | None = Field(None, ge=0, description="Rows to synthesize in this run: a stratified sample over "
                               "language x goal x dimension; the rest stays pending (a re-run with a larger sample "
                               "continues). Default: all rows for a remote endpoint, "
                               f"{LOCAL_DEFAULTS['sample']} with the embedded model; 0 = all.")
    n_candidates: int = Field(1, ge=1, le=16, description="Candidates per prompt; the best passing one is kept. "
                              "Default 1, 2 with the embedded model.")
    seed: int = Field(0, description="Base seed; candidate k asks with seed+k (also part of the cache key).")
    rewrite_unsafe: bool = Field(True, description="Rewrite source responses labelled harmful into safe ones.")
    rewrite_mismatched: bool = Field(True, description="Rewrite source responses whose kind contradicts the goal: "
                                     "refusals of benign prompts, non-refusals of prompts that must be refused.")
    safe_completion_categories: list[str] = Field(
        default_factory=list, description="Dimension ids (e.g. S11) whose harmful prompts get a safe completion "
        "instead of a refusal, on top of the taxonomy's safe_complete/resources dimensions.")
    templates_dir: InputPath | None = Field(None, description="Folder with <en|zh>/<goal>.<version>.txt templates "
                                       "(default: the ones shipped with curate).")
    template_version: str = Field("v2", description="Template version to use (v2: v1 plus the shape grammar's "
                                  "leads in its front matter).")
    min_response_chars: int = Field(20, ge=0, description="Drop answers shorter than this (synth_too_short).")
    max_response_chars: int = Field(8000, ge=1, description="Drop answers longer than this (synth_too_long).")
    min_reasoning_chars: int = Field(30, ge=0, description="Drop answers whose reasoning is shorter "
                                     "(synth_reasoning_missing).")
    shape_grammar: bool | None = Field(None, description="Constrain each answer to <reasoning>...</reasoning> + reply "
                                       "with a llama.cpp grammar (the request's 'grammar' field; only llama.cpp "
                                       "servers know it). Default: on for the embedded model, off otherwise.")
    max_reasoning_chars: int = Field(1200, ge=1, description="Longest reasoning the shape grammar lets the model "
                                     "write before it must close the block and reply.")
    boilerplate: list[str] = Field(default_factory=list, description="Extra phrases that drop an answer "
                                   "(synth_boilerplate), added to the built-in list.")
    near_duplicate_threshold: float = Field(0.9, ge=0, le=1, description="Jaccard similarity above which "
                                                   "an answer duplicates an earlier one (synth_near_duplicate); "
                                                   "0 disables.")
    kind_detector: Literal["auto", "classifier", "phrases"] = Field(
        "auto", description="How answers are checked against the goal: the classifier's response-kind model "
        "(auto: when one is installed), or the bilingual refusal-phrase detector.")
    kind_model_dir: InputPath | None = Field(None, description="Classifier model folder for the response-kind check "
                                             "(default: the model shipped with curate).")
    judge: bool = Field(False, description="Score candidates with an LLM judge (1-10 on policy adherence, safety, "
                        "helpfulness, reasoning quality).")
    judge_model: str | None = Field(None, description="Judge model (default: the writer model).")
    judge_threshold: int = Field(7, ge=1, le=10, description="Every judge score must reach this (synth_judge_low).")
    json_mode: Literal["json_object", "json_schema", "none"] = Field(
        "json_object", description="How judges ask for JSON: response_format json_object (vLLM, DeepSeek, OpenAI, "
        "llama.cpp), json_schema (vLLM, OpenAI, llama.cpp) or none (prompt only).")

    def uses_shape_grammar(self) -> bool:
        return self.is_local() if self.shape_grammar is None else self.shape_grammar

    def effective(self) -> "SynthesizeOptions":
        """These options with the embedded model's defaults for the keys the user did not set."""
        if not self.is_local():
            return self
        return self.model_copy(update={k: v for k, v in LOCAL_DEFAULTS.items() if k not in self.model_fields_set})
