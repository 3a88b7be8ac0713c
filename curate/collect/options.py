"""Options of the collect stage (its pipeline YAML keys; `curate collect` derives its source flags from SourceSpec)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from curate.collect.sources import SourceSpec
from curate.stage import StageOptions


class CollectOptions(StageOptions):
    sources: list[SourceSpec] = Field(min_length=1, description="Sources to read (presets, files, HF datasets).")
    min_prompt_chars: int = Field(1, ge=1, description="Prompts shorter than this (after normalisation) are quarantined.")

    def input_files(self) -> list[Path]:
        files: list[Path] = []
        for source in self.sources:
            files += source.input_files()
        return files
