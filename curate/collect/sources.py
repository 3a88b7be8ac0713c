"""Source declarations (what the pipeline YAML says under collect.sources) and how each yields items."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curate.collect.presets import PRESETS, Item, _python_list
from curate.collect.readers import READERS, BadLine, RawRow, list_files, sniff_format
from curate.collect.values import BadValue, label_values
from curate.config import InputPath, check_name


class FieldMap(BaseModel):
    """Which raw fields hold what (generic sources and HF datasets)."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field("prompt", description="Field with the user prompt.")
    response: str | None = Field(None, description="Field with the answer (may contain <think>...</think>).")
    reasoning: str | None = Field(None, description="Field with the reasoning, if separate from the answer.")
    id: str | None = Field(None, description="Field with the row id (default: file and line number).")
    labels: list[str] = Field(default_factory=list, description="Fields whose values are source labels.")
    lang: str | None = Field(None, description="Field with an ISO language code (default: detected).")


class HFDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Dataset name or local path, as for datasets.load_dataset.")
    config: str | None = Field(None, description="Dataset configuration name.")
    split: str = Field("train", description="Split to read.")
    revision: str | None = Field(None, description="Git revision on the hub.")
    data_files: list[str] | None = Field(None, description="Data files, for the generic json/csv/parquet builders.")


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Source name stored on every row (default: the preset name).")
    preset: str | None = Field(None, description=f"Known dataset layout: {', '.join(PRESETS)}.")
    path: InputPath | None = Field(None, description="File or folder (a preset's dataset folder).")
    hf: HFDataset | None = Field(None, description="Read through datasets.load_dataset instead of a path.")
    format: Literal["auto", "jsonl", "json", "csv", "parquet"] = Field("auto", description="File format.")
    fields: FieldMap = Field(default_factory=FieldMap, description="Field mapping (generic sources).")
    label_set: str | None = Field(None, description="Mapping file in the taxonomy that maps this source's labels.")
    license: str | None = Field(None, description="Licence of the source; travels with every row.")
    role: Literal["safety", "general"] | None = Field(None, description="general = capability data mixed as is.")
    harmful: bool | None = Field(None, description="prompt_harmful for rows whose labels do not decide it.")
    languages: list[str] | None = Field(None, description="Keep only these languages (others are dropped, counted).")
    limit: int | None = Field(None, ge=1, description="Read at most this many rows (after quarantine).")

    @model_validator(mode="after")
    def _check(self) -> "SourceSpec":
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (known: {', '.join(PRESETS)})")
        if (self.path is None) == (self.hf is None):
            raise ValueError("give exactly one of 'path' or 'hf'")
        if self.preset is None and self.license is None:
            raise ValueError("'license' is required for a source without a preset (it travels with every row)")
        if self.source_name is None:
            raise ValueError("'name' is required for a source without a preset")
        check_name(self.source_name, "source name")
        return self

    @field_validator("languages")
    @classmethod
    def _langs(cls, value):
        return [v.lower() for v in value] if value else value

    @property
    def source_name(self) -> str | None:
        return self.name or self.preset

    @property
    def license_name(self) -> str:
        return self.license or PRESETS[self.preset].license

    @property
    def role_name(self) -> str:
        return self.role or (PRESETS[self.preset].role if self.preset else "safety")

    @property
    def label_set_name(self) -> str | None:
        return self.label_set or (PRESETS[self.preset].label_set if self.preset else None)

    def input_files(self) -> list[Path]:
        if self.path is None:
            return []
        return [p for p in list_files(self.path, str(self.path)) if isinstance(p, Path)]


def iter_items(spec: SourceSpec) -> Iterator[tuple[str, Item | BadLine, str]]:
    """Yield (location, item or bad line, encoding) for every row of a source."""
    if spec.hf is not None:
        yield from _iter_hf(spec)
        return
    preset = PRESETS.get(spec.preset) if spec.preset else None
    convert = preset.converter(spec.languages) if preset else None
    for raw in _iter_raw(spec, preset):
        if isinstance(raw, BadLine):
            yield raw.location, raw, ""
            continue
        converted = _convert(convert, raw.data, raw.location, spec.fields)
        if isinstance(converted, str):
            yield raw.location, BadLine(raw.location, converted, _short(raw.data)), raw.encoding
            continue
        for item in converted if isinstance(converted, list) else [converted]:
            yield raw.location, item, raw.encoding


def _iter_raw(spec: SourceSpec, preset) -> Iterator[RawRow | BadLine]:
    root = Path(spec.path)
    if preset and root.is_dir():
        files = sorted({f for pattern in preset.files for f in root.glob(pattern) if f.is_file()})
        if not files:
            yield BadLine(str(root), f"preset {preset.name}: no file matching {', '.join(preset.files)}")
            return
    else:
        files = list(list_files(root, str(root)))
    for file in files:
        if isinstance(file, BadLine):
            yield file
            continue
        fmt = spec.format if spec.format != "auto" else (preset.format if preset else sniff_format(file))
        if fmt is None:
            yield BadLine(str(file), "unknown file type: set 'format' (jsonl, json, csv, parquet)")
            continue
        label = str(file.relative_to(root)) if root.is_dir() else file.name
        yield from READERS[fmt](file, label)


def _convert(convert, row: dict[str, Any], location: str, fields: FieldMap) -> Item | list[Item] | str:
    """A raw row as items (preset converter or field map), or the reason it cannot be used."""
    try:
        return convert(row, location) if convert else _generic(row, location, fields)
    except BadValue as exc:
        return str(exc)
    except (TypeError, AttributeError) as exc:  # a preset met a value of a shape it does not read
        return f"unexpected value shape: {type(exc).__name__}: {str(exc)[:120]}"


def _generic(row: dict[str, Any], location: str, fields: FieldMap) -> Item | str:
    if fields.prompt not in row:
        return f"missing field {fields.prompt!r}"
    labels: list[str] = []
    for name in fields.labels:
        value = row.get(name)
        labels += _python_list(value) if isinstance(value, str) and value.strip().startswith("[") else \
            label_values(value, name)
    response = row.get(fields.response) if fields.response else None
    item = Item(row[fields.id] if fields.id and row.get(fields.id) is not None else location,
                row[fields.prompt], response=response, labels=labels,
                lang=row[fields.lang] if fields.lang and row.get(fields.lang) is not None else None)
    if fields.reasoning and row.get(fields.reasoning):
        item.extra["reasoning"] = row[fields.reasoning]
    return item


def _iter_hf(spec: SourceSpec) -> Iterator[tuple[str, Item | BadLine, str]]:
    import datasets

    hf = spec.hf
    label = f"hf:{hf.name}"
    try:
        ds = datasets.load_dataset(hf.name, hf.config, split=hf.split, revision=hf.revision,
                                   data_files=hf.data_files)
    except Exception as exc:  # network, missing dataset, bad split: one quarantined line, the run goes on
        yield label, BadLine(label, f"cannot load dataset: {type(exc).__name__}: {exc}"), ""
        return
    convert = PRESETS[spec.preset].converter(spec.languages) if spec.preset else None
    for i, row in enumerate(ds):
        where = f"{label}/{hf.split}:{i + 1}"
        converted = _convert(convert, row, where, spec.fields)
        if isinstance(converted, str):
            yield where, BadLine(where, converted, _short(row)), ""
            continue
        for item in converted if isinstance(converted, list) else [converted]:
            yield where, item, ""


def _short(data: dict[str, Any]) -> str:
    text = repr(data)
    return text[:300]
