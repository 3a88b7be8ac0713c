"""Options of the classify stage (also its CLI flags and pipeline YAML keys)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from curate.llm import LLMOptions


class ClassifyOptions(LLMOptions):
    model_dir: Path | None = Field(None, description="Classifier model directory (default: the model shipped "
                                   "with curate, curate/models/default).")
    threshold: list[str] = Field(default_factory=list, description="Override a dimension's threshold, as ID=VALUE "
                                 "(e.g. S03=0.4); repeatable.")
    harmful_threshold: float | None = Field(None, ge=0, le=1, description="Override the harmful-vs-safe threshold "
                                            "on the highest harm-dimension score.")
    embed_band: float = Field(0.3, ge=0, le=1, description="Rows fastText is unsure about (harm score within this "
                              "of its threshold, or the two best dimensions within it) are also scored by the "
                              "model's sentence-embedding layer, if it has one (about 250 rows/s per core): 0 = "
                              "fastText alone, 1 = every row.")
    judge: bool = Field(False, description="Send low-confidence rows to an LLM judge (needs base_url and model).")
    judge_margin: float = Field(0.15, ge=0, le=1, description="A row is low-confidence when its harm score is "
                                "within this distance of the harmful threshold.")
    judge_max_rows: int | None = Field(None, ge=0, description="Judge at most this many rows (the least "
                                       "confident first).")
    json_mode: str = Field("json_object", description="How the judge is asked for JSON: json_schema, "
                           "json_object or none.")
    review_band: float = Field(0.0, ge=0, le=1, description="A row the classifier would call safe although its "
                               "harm score is within this distance below the harmful threshold is left undecided "
                               "(prompt_harmful null, meta.classify.review = 'harm_uncertain'): synthesis does not "
                               "answer it helpfully and review's 'uncertain' sample takes it first. Applies after the "
                               "judge, to rows the judge did not decide; 0 = off.")
    judge_dimensions: bool = Field(False, description="Also take the judge's harm dimensions (default: the judge "
                                   "decides the harmful flag, the classifier the dimensions; small models choose "
                                   "dimensions near chance).")

    @field_validator("threshold")
    @classmethod
    def _thresholds(cls, value: list[str]) -> list[str]:
        for item in value:
            key, sep, num = item.partition("=")
            try:
                ok = sep and key.strip() and 0.0 <= float(num) <= 1.0
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"threshold {item!r}: expected ID=VALUE with VALUE in [0, 1], e.g. S03=0.4")
        return value

    @field_validator("json_mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value not in ("json_schema", "json_object", "none"):
            raise ValueError("json_mode must be json_schema, json_object or none")
        return value

    def uses_llm(self) -> bool:
        return self.judge and super().uses_llm()

    def run_fingerprint(self) -> dict[str, str | None]:
        return super().run_fingerprint() if self.judge else {}  # without the judge no endpoint is asked

    def overrides(self) -> dict[str, float]:
        return {k.strip(): float(v) for k, _, v in (t.partition("=") for t in self.threshold)}
