"""Balance options: inline keys, or ``config: balance.yaml`` holding the same keys (inline keys win)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from curate.kinds import KINDS
from curate.config import OutputPath
from curate.stage import StageOptions


class DimensionBounds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: int | None = Field(None, ge=0, description="At least this many rows in this dimension (all kinds together).")
    max: int | None = Field(None, ge=0, description="At most this many rows in this dimension (all kinds together).")


class BalanceOptions(StageOptions):
    config: Path | None = Field(None, description="YAML file with these same keys (keys given inline override it).")
    seed: int = Field(0, description="Random seed: the same seed and input give the same selection and splits.")
    total: int | None = Field(None, ge=0, description="Rows to select in all; default: as many as the kind mix "
                                                        "allows without a kind running short.")
    kinds: dict[str, float] = Field(default_factory=dict, description="Mix of kinds as ratios, e.g. refusal: 0.5, "
                                    "safe_completion: 0.2, helpful: 0.2, general: 0.1 (default: the input's mix).")
    languages: dict[str, float] = Field(default_factory=dict, description="Language ratio, e.g. zh: 0.5, en: 0.5 "
                                        "(default: each stratum keeps its own language mix).")
    temperature: float = Field(1.0, gt=0, description="Spread of each kind over dimensions: share ~ available^(1/T); "
                               "1 = proportional to what is available, larger = flatter (toward uniform).")
    min_per_dimension: int = Field(0, ge=0, description="Every harm dimension gets at least this many rows (all "
                                   "kinds together; a shortfall is reported when there are fewer).")
    max_per_dimension: int | None = Field(None, ge=0, description="No harm dimension gets more rows than this (all kinds together).")
    dimensions: dict[str, DimensionBounds] = Field(default_factory=dict, description="Per-dimension min/max "
                                                   "overriding the two above, e.g. S08: {min: 300}.")
    test_fraction: float = Field(0.1, ge=0, lt=1, description="Share of selected rows in the test split "
                                 "(stratified by dimension x language, whole dup clusters only).")
    pending: Literal["auto", "exclude", "keep"] = Field("auto", description="Rows with no response yet (synthesis "
                                                        "pending): exclude them, keep them eligible, or auto: keep "
                                                        "them when no kept row has a response (balance then selects "
                                                        "the prompts to synthesize by the same quotas), else exclude.")
    shortfall_csv: OutputPath | None = Field(None, description="Where to write the shortfall table "
                                             "(default: <run_dir>/shortfall.csv in a pipeline run).")

    @model_validator(mode="before")
    @classmethod
    def _merge_config_file(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or not data.get("config"):
            return data
        base = (info.context or {}).get("base_dir")
        path = Path(data["config"]).expanduser()
        if base and not path.is_absolute():
            path = Path(base) / path
        if not path.is_file():
            raise ValueError(f"balance config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of balance options")
        if "config" in loaded:
            raise ValueError(f"{path}: a balance config file cannot point to another one ('config' key)")
        if loaded.get("shortfall_csv") and not Path(loaded["shortfall_csv"]).is_absolute():
            loaded["shortfall_csv"] = path.parent / loaded["shortfall_csv"]  # paths in the file follow the file
        return {**loaded, **data, "config": path}

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, ratio in value.items():
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
            if ratio < 0:
                raise ValueError(f"kind {kind!r}: ratio must be >= 0")
        if value and sum(value.values()) <= 0:
            raise ValueError("kind ratios must not all be 0")
        return value

    @field_validator("languages")
    @classmethod
    def _ratios(cls, value: dict[str, float]) -> dict[str, float]:
        if any(r < 0 for r in value.values()):
            raise ValueError("language ratios must be >= 0")
        if value and sum(value.values()) <= 0:
            raise ValueError("language ratios must not all be 0")
        return value

    def bounds(self, dimension: str) -> tuple[int, int | None]:
        """(min, max) rows of a dimension; S00 and general only get bounds named for them."""
        from curate.kinds import GENERAL_DIMENSION
        from curate.taxonomy import SAFE

        named = self.dimensions.get(dimension)
        default = (0, None) if dimension in (SAFE, GENERAL_DIMENSION) else (
            self.min_per_dimension, self.max_per_dimension)
        if named is None:
            return default
        return (named.min if named.min is not None else default[0], named.max if named.max is not None else default[1])


def load_options(config: str | Path | None = None, **overrides: Any) -> BalanceOptions:
    """Options from a YAML file plus overrides (what ``curate balance --config FILE --seed 3`` needs)."""
    data = {k: v for k, v in overrides.items() if v is not None}
    if config is not None:
        data["config"] = Path(config)
    return BalanceOptions.model_validate(data, context={})
