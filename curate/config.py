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

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from curate.engine.settings import DaskSettings, EngineName, EngineSettings
from curate.errors import UsageError
from curate.stage import STAGE_MODULES, Stage, StageOptions, load_stage


class ConfigError(UsageError):
    """A one-line, user-facing configuration error."""


# Names (of runs, of sources) become folder and file names: no separators, no "..", no leading dot or dash.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str, what: str) -> str:
    if not SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"{what} {name!r} must be a plain name matching {SAFE_NAME.pattern} (no '..', no path)")
    return name


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

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return check_name(value, "run name")


def validation_message(exc: ValidationError, prefix: str = "", *, as_flag: bool = False) -> str:
    """The first pydantic error as one line, ``where: what`` (the one formatter for pipeline keys, CLI flags and
    collect sources). ``where`` is the dotted key path after ``prefix``, or with ``as_flag`` the CLI flag."""
    err = exc.errors()[0]
    parts = (prefix.split(".") if prefix else []) + [str(p) for p in err["loc"]]
    if as_flag:
        where = "--" + parts[0].replace("_", "-") if parts else "options"
    else:
        where = ".".join(parts) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown option" if as_flag else "unknown key"
    elif err["type"] == "missing" and not as_flag:
        msg = "required key is missing"
    return f"{where}: {msg}"


def load_yaml(path: Path) -> Any:
    """A YAML file's content; a file that is not UTF-8 YAML is a one-line ConfigError naming the line."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line, whatever the parser says
        raise ConfigError(f"{path}: not valid YAML{where}: {problem[:200]}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None


def load_pipeline(path: str | Path) -> tuple[PipelineConfig, list[StageSpec], dict[str, Any]]:
    """Load and validate a pipeline file. Returns the config, the validated stages and the raw mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: pipeline file not found")
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with 'name' and 'stages' at the top level")
    context = {"base_dir": path.parent}
    try:
        config = PipelineConfig.model_validate(raw, context=context)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_message(exc)}") from None
    specs: list[StageSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(config.stages):
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"{path}: stages.{i}: each stage is a one-key mapping, e.g. '- dedup: {{threshold: 0.8}}'")
        (name, options), = item.items()
        stage: Stage | None = load_stage(name) if isinstance(name, str) else None  # only the stages the run uses
        if stage is None:
            raise ConfigError(f"{path}: stages.{i}: unknown stage {name!r} (available: {', '.join(STAGE_MODULES)})")
        if name in seen:
            raise ConfigError(f"{path}: stages.{i}: stage {name!r} appears twice")
        seen.add(name)
        if options is not None and not isinstance(options, dict):
            raise ConfigError(f"{path}: stages.{i}.{name}: expected a mapping of options")
        try:
            opts = stage.Options.model_validate(options or {}, context=context)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {validation_message(exc, f'stages.{i}.{name}')}") from None
        specs.append(StageSpec(name=name, options=opts, stage=stage))
    if not specs:
        raise ConfigError(f"{path}: stages: the pipeline has no stages")
    if specs[0].stage.creates_rows is False:
        raise ConfigError(f"{path}: stages.0: the first stage must create records (collect), not {specs[0].name!r}")
    return config, specs, raw
