"""Pipeline YAML: loaded safely, validated with pydantic, errors as one line naming the key and the file.

    name: quickstart
    run_dir: runs/quickstart        # optional; default ./runs/<name>
    taxonomy: ../taxonomy/default   # optional; default: the taxonomy shipped with curate
    stages:
      - collect: {sources: [...]}
      - dedup: {threshold: 0.8}

Relative paths inside the file are resolved against the file's own folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo

from curate.engine.settings import DaskSettings, EngineName, EngineSettings
from curate.stage import Stage, StageOptions, available_stages


class ConfigError(ValueError):
    """A one-line, user-facing configuration error."""


def _resolve(path: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = Path(path).expanduser()
    return (Path(base) / path) if base and not path.is_absolute() else path


def _must_exist(path: Path, info: ValidationInfo) -> Path:
    path = _resolve(path, info)
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    return path


# Use these in stage Options so relative paths follow the YAML file and missing files fail at load time.
InputPath = Annotated[Path, AfterValidator(_must_exist)]
OutputPath = Annotated[Path, AfterValidator(_resolve)]


class StageSpec(BaseModel):
    name: str
    options: StageOptions
    stage: Any = Field(exclude=True)  # the Stage object


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Run name; the default run folder is ./runs/<name>.")
    run_dir: OutputPath | None = Field(None, description="Run folder (default ./runs/<name>).")
    taxonomy: InputPath | None = Field(None, description="Taxonomy folder (default: the one shipped with curate).")
    report: bool = Field(True, description="Write the HTML/Markdown run report at the end of the run.")
    stages: list[dict[str, Any]] = Field(description="Ordered stages, each a one-key mapping: - <stage>: {options}.")
    engine: EngineName = Field("local", description="Where stages run: local (this process) or dask (a cluster).")
    dask: DaskSettings = Field(default_factory=DaskSettings, description="The Dask cluster (engine: dask).")

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(engine=self.engine, dask=self.dask)


def _format_error(exc: ValidationError, file: Path, prefix: str = "") -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in (prefix.split(".") if prefix else []) + [str(p) for p in err["loc"]])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{file}: {loc or '(top level)'}: {msg}"


def load_pipeline(path: str | Path) -> tuple[PipelineConfig, list[StageSpec], dict[str, Any]]:
    """Load and validate a pipeline file. Returns the config, the validated stages and the raw mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: pipeline file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with 'name' and 'stages' at the top level")
    context = {"base_dir": path.parent}
    try:
        config = PipelineConfig.model_validate(raw, context=context)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, path)) from None
    registry = available_stages()
    specs: list[StageSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(config.stages):
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"{path}: stages.{i}: each stage is a one-key mapping, e.g. '- dedup: {{threshold: 0.8}}'")
        (name, options), = item.items()
        stage: Stage | None = registry.get(name)
        if stage is None:
            raise ConfigError(f"{path}: stages.{i}: unknown stage {name!r} (available: {', '.join(registry)})")
        if name in seen:
            raise ConfigError(f"{path}: stages.{i}: stage {name!r} appears twice")
        seen.add(name)
        if options is not None and not isinstance(options, dict):
            raise ConfigError(f"{path}: stages.{i}.{name}: expected a mapping of options")
        try:
            opts = stage.Options.model_validate(options or {}, context=context)
        except ValidationError as exc:
            raise ConfigError(_format_error(exc, path, f"stages.{i}.{name}")) from None
        specs.append(StageSpec(name=name, options=opts, stage=stage))
    if not specs:
        raise ConfigError(f"{path}: stages: the pipeline has no stages")
    if specs[0].stage.creates_rows is False:
        raise ConfigError(f"{path}: stages.0: the first stage must create records (collect), not {specs[0].name!r}")
    return config, specs, raw
