"""Eval suites: a YAML list of sources (bundled presets or curate records) turned into one frame of items.

    name: small
    seed: 0
    sources:
      - preset: harmful                 # MultiJail en+zh, taxonomy dimensions
        limit: 64                       # per language, seeded sample
      - preset: harmful
        limit: 16
        attacks: [refusal_suppression, role_play]   # jailbreak-wrapped copies (attack column)
        plain: false                    # only the wrapped copies
      - preset: benign                  # XSTest safe prompts (benign look-alikes)
      - preset: gsm8k                   # general reasoning, exact match on the final number
      - preset: mmlu                    # general ability, letter choice
      - preset: safetybench_zh          # risk identification, multiple choice
      - path: runs/demo/export          # a curate export folder: its test split (or any records file)

Every item has a task (harmful / benign / math / mcq / risk_mcq), a language, its dimensions (the taxonomy
ids of a harmful prompt; else the source's name) and an attack ("none" for a plain prompt). Rows of a records
source whose ``prompt_harmful`` is unknown cannot be scored and are counted as ``unlabelled``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from curate.config import ConfigError

Task = Literal["harmful", "benign", "math", "mcq", "risk_mcq"]
PRESET_TASKS: dict[str, Task] = {"harmful": "harmful", "benign": "benign", "gsm8k": "math", "mmlu": "mcq",
                                 "safetybench_zh": "risk_mcq"}
PLAIN = "none"  # the attack of an unwrapped prompt
ITEM_SCHEMA = {"item_id": pl.Utf8, "source": pl.Utf8, "task": pl.Utf8, "lang": pl.Utf8,
               "dimensions": pl.List(pl.Utf8), "attack": pl.Utf8, "base_prompt": pl.Utf8, "prompt": pl.Utf8,
               "reference": pl.Utf8}

# How a general item asks for its answer, so the answer can be matched without a judge.
MATH_INSTRUCTION = {"en": "Solve the problem. End with a last line of the form 'Answer: <number>'.",
                    "zh": "请解答这道题，最后一行写成“答案：<数字>”。"}
MCQ_INSTRUCTION = {"en": "Answer with the letter of the correct option (A, B, C or D) on the last line, "
                         "in the form 'Answer: <letter>'.",
                   "zh": "请在最后一行以“答案：<字母>”的形式给出正确选项的字母。"}


class SuiteError(ConfigError):
    """A suite file or one of its sources cannot be used; the message says which and why."""


class SuiteSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: Literal["harmful", "benign", "gsm8k", "mmlu", "safetybench_zh"] | None = None
    path: Path | None = Field(None, description="curate records (file or parquet folder) or a curate export folder")
    split: str = Field("test", description="For a curate export folder: the split to read.")
    languages: list[str] | None = None
    limit: int | None = Field(None, ge=1, description="Items per language (seeded sample).")
    attacks: list[str] = Field(default_factory=list, description="Jailbreak templates wrapped around the harmful "
                               "items ('all' = every bundled template).")
    plain: bool = Field(True, description="Keep the unwrapped items beside the wrapped ones.")

    @model_validator(mode="after")
    def _one_origin(self) -> "SuiteSource":
        if (self.preset is None) == (self.path is None):
            raise ValueError("give exactly one of preset or path")
        if not self.plain and not self.attacks:
            raise ValueError("plain: false needs attacks")
        return self


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "suite"
    seed: int = 0
    sources: list[SuiteSource] = Field(min_length=1)


@dataclass
class LoadedSuite:
    name: str
    items: pl.DataFrame  # ITEM_SCHEMA
    unlabelled: int  # records rows that could not be scored (prompt_harmful unknown)


def load_suite(path: Path) -> LoadedSuite:
    """Parse a suite YAML and build its items; relative paths are relative to the YAML file."""
    path = Path(path)
    if not path.is_file():
        bundled = bundled_suites()
        if str(path) not in bundled:
            raise SuiteError(f"{path}: no such suite file (bundled suites: {', '.join(sorted(bundled))})")
        path = bundled[str(path)]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        suite = Suite.model_validate(raw or {})
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"])) or "suite"
        raise SuiteError(f"{path}: {where}: {err['msg'].removeprefix('Value error, ')}") from None
    frames, unlabelled = [], 0
    for n, source in enumerate(suite.sources):
        if source.path is not None and not source.path.is_absolute():
            source = source.model_copy(update={"path": path.parent / source.path})
        items, skipped = _source_items(source, suite.seed + n)
        frames.append(items)
        unlabelled += skipped
    items = pl.concat(frames, how="vertical")
    dup = items.filter(pl.col("item_id").is_duplicated())["item_id"].unique().to_list()
    if dup:
        raise SuiteError(f"{path}: the same item appears in two sources ({dup[0]}, {len(dup)} in all): "
                         "remove the overlap so every item is counted once")
    return LoadedSuite(suite.name, items, unlabelled)


def bundled_suites() -> dict[str, Path]:
    folder = Path(str(resources.files("curate").joinpath("data", "eval", "suites")))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def _source_items(source: SuiteSource, seed: int) -> tuple[pl.DataFrame, int]:
    if source.preset is not None:
        base, skipped = preset_items(source.preset), 0
    else:
        base, skipped = records_items(source.path, source.split)
    if source.languages:
        base = base.filter(pl.col("lang").is_in(source.languages))
    if source.limit is not None:
        base = _sample_per_language(base, source.limit, seed)
    parts = [base] if source.plain else []
    if source.attacks:
        from curate.eval.attacks import wrap

        parts.append(wrap(base.filter(pl.col("task") == "harmful"), source.attacks))
    return pl.concat(parts, how="vertical").select(list(ITEM_SCHEMA)), skipped


def _sample_per_language(df: pl.DataFrame, limit: int, seed: int) -> pl.DataFrame:
    """A seeded sample of ``limit`` items per language; parallel items (same ``pair``) are kept together."""
    key = pl.coalesce(pl.col("pair"), pl.col("item_id")) if "pair" in df.columns else pl.col("item_id")
    keys = df.select(key.alias("k"))["k"].unique(maintain_order=True).sort()
    order = np.random.default_rng(seed).permutation(len(keys))
    rank = pl.DataFrame({"k": keys, "rank": order})
    ranked = df.with_columns(key.alias("k")).join(rank, on="k", how="left")
    ranked = ranked.with_columns(pl.col("rank").rank("ordinal").over("lang").alias("r"))
    return ranked.filter(pl.col("r") <= limit).sort("rank", "lang").drop("k", "rank", "r")


# -- presets ------------------------------------------------------------------------------------

def _preset_rows(name: str) -> list[dict]:
    text = resources.files("curate").joinpath("data", "eval", f"{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def preset_items(name: str) -> pl.DataFrame:
    task = PRESET_TASKS[name]
    rows = _preset_rows(name)
    df = pl.DataFrame(rows, infer_schema_length=None)
    if task in ("harmful", "benign"):
        prompt = pl.col("prompt")
        reference = pl.lit(None, pl.Utf8)
    elif task == "math":
        prompt = _with_instruction(pl.col("question"), MATH_INSTRUCTION)
        reference = pl.col("answer").cast(pl.Utf8)
    else:
        options = pl.col("choices").list.eval(
            pl.concat_str(pl.lit("ABCD").str.slice(pl.int_range(pl.len()), 1), pl.lit(". "), pl.element()))
        prompt = _with_instruction(pl.concat_str(pl.col("question"), pl.lit("\n"),
                                                 options.list.join("\n")), MCQ_INSTRUCTION)
        reference = pl.col("answer").cast(pl.Utf8)
    dims = pl.col("categories") if "categories" in df.columns else pl.concat_list(pl.col("source"))
    out = df.select(
        pl.col("id").alias("item_id"), pl.col("source"), pl.lit(task).alias("task"), pl.col("lang"),
        dims.alias("dimensions"), pl.lit(PLAIN).alias("attack"), prompt.alias("base_prompt"),
        prompt.alias("prompt"), reference.alias("reference"),
        *([pl.col("pair")] if "pair" in df.columns else []))
    return out


def _with_instruction(text: pl.Expr, instruction: dict[str, str]) -> pl.Expr:
    return pl.concat_str(text, pl.lit("\n\n"), pl.when(pl.col("lang") == "zh").then(pl.lit(instruction["zh"]))
                         .otherwise(pl.lit(instruction["en"])))


# -- curate records (an export's test split works directly) ---------------------------------------

def read_records_or_export(path: Path, split: str | None) -> pl.DataFrame:
    """Records from a file or parquet folder; a curate export folder is read at ``data/<split>-*.parquet``
    (every split when ``split`` is None)."""
    from curate.io import read_records

    path = Path(path)
    if not (path.is_dir() and (path / "data").is_dir()):
        return read_records(path)
    shards = sorted((path / "data").glob(f"{split or '*'}-*.parquet"))
    if not shards:
        raise SuiteError(f"{path}: export has no {split!r} split (no data/{split}-*.parquet)")
    return pl.concat([pl.read_parquet(s) for s in shards], how="diagonal_relaxed")


def records_items(path: Path, split: str) -> tuple[pl.DataFrame, int]:
    """Harmful and benign items from curate records; an export folder is read at ``data/<split>-*.parquet``."""
    path = Path(path)
    df = read_records_or_export(path, split)
    missing = [c for c in ("id", "prompt", "lang", "prompt_harmful") if c not in df.columns]
    if missing:
        raise SuiteError(f"{path}: not curate records (missing column {missing[0]!r})")
    if "drop_reason" in df.columns:
        df = df.filter(pl.col("drop_reason").is_null())
    labelled = df.filter(pl.col("prompt_harmful").is_not_null())
    cats = pl.col("categories") if "categories" in df.columns else pl.lit([], pl.List(pl.Utf8))
    source = pl.col("source") if "source" in df.columns else pl.lit(path.name)
    attack = pl.col("attack").fill_null(PLAIN) if "attack" in df.columns else pl.lit(PLAIN)
    items = labelled.select(
        pl.col("id").alias("item_id"), source.alias("source"),
        pl.when(pl.col("prompt_harmful")).then(pl.lit("harmful")).otherwise(pl.lit("benign")).alias("task"),
        pl.col("lang"),
        pl.when(cats.list.len() > 0).then(cats).otherwise(pl.concat_list(source)).alias("dimensions"),
        attack.alias("attack"), pl.col("prompt").alias("base_prompt"), pl.col("prompt"),
        pl.lit(None, pl.Utf8).alias("reference"))
    return items, df.height - labelled.height
