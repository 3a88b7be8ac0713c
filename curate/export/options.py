"""Export options (also the `curate export` flags and the pipeline YAML keys)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from curate.config import OutputPath
from curate.export.formats import Format, ReasoningMode
from curate.stage import StageOptions


class ExportOptions(StageOptions):
    out: OutputPath | None = Field(None, description="Output folder for the hub-style dataset "
                                   "(default: <run_dir>/export in a pipeline run).")
    content: Literal["auto", "answers", "prompts"] = Field("auto", description="answers: kept rows with a response "
                                                          "(training data); prompts: every kept row as a prompt set "
                                                          "awaiting synthesis (no answer columns; `curate synthesize "
                                                          "--in <out>/data` takes it); auto: answers when any kept "
                                                          "row has one, else prompts.")
    format: Format = Field("messages", description="Training format: messages (chat turns), sharegpt "
                           "(conversations from/value) or alpaca (instruction/input/output).")
    reasoning: ReasoningMode = Field("inline", description="Chain of thought inline as <think>...</think> before "
                                     "the answer (R1 style), or as a separate 'reasoning' field.")
    push_to_hub: str | None = Field(None, description="Hugging Face dataset repo (user/name) to upload the folder "
                                    "to; the token comes from HF_TOKEN.")
    private: bool = Field(False, description="Create the hub repo as private.")
    pretty_name: str | None = Field(None, description="Dataset name in the card (default: the folder name).")
    description: str | None = Field(None, description="Extra description paragraph for the card.")
    plots: bool = Field(True, description="Draw PNG plots (dimensions before/after balancing, languages, kinds) "
                        "into the folder and the card.")
    shard_rows: int = Field(100_000, ge=1, description="Rows per parquet file in data/.")
