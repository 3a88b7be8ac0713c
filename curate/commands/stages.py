"""`curate <stage> --in ... --out ...`: each stage alone on files, its flags derived from its Options model, run
by the pipeline's single-stage runner; `curate collect`, whose source flags are derived from ``SourceSpec``."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import click
from pydantic import BaseModel, ValidationError

from curate.commands.common import (UserError, given_values, handle_errors, log, options_from_model, parse_options,
                                    taxonomy_option)
from curate.engine.cli import FLAGS as ENGINE_FLAGS, engine_params, settings_from_flags


def run_on_files(stage_name: str, in_paths: list[Path], out_path: Path | None, options: BaseModel,
                 taxonomy: Path | None, cache_dir: Path | None, engine=None) -> None:
    from curate import funnel
    from curate.pipeline import run_on_files as run
    from curate.stage import load_stage

    result = run(load_stage(stage_name), in_paths, out_path, options, taxonomy=taxonomy, cache_dir=cache_dir,
                 log=log, engine=engine)
    funnel.render(result.funnel, title=f"{stage_name}: records")


def _in_option() -> click.Option:
    return click.Option(["--in", "in_paths"], multiple=True, required=True, type=click.Path(path_type=Path),
                        help="Input records: .jsonl, .jsonl.gz, .csv, .parquet or a folder of parquet shards "
                        "(repeatable).")


def _out_option(help_text: str | None = None) -> click.Option:
    return click.Option(["--out", "out"], required=True, type=click.Path(path_type=Path),
                        help=help_text or "Output: a records file (.jsonl/.jsonl.gz/.csv/.parquet) or a folder for "
                        "parquet shards.")


def stage_command(stage) -> click.Command:
    has_out_field = "out" in stage.Options.model_fields  # export: --out is the stage's own option

    @handle_errors
    def callback(in_paths, out, taxonomy, cache_dir, **given):
        if has_out_field:
            given["out"] = out
        engine = settings_from_flags(None, **{flag: given.pop(flag) for flag in ENGINE_FLAGS})
        options = parse_options(stage.Options, given, Path.cwd())
        run_on_files(stage.name, list(in_paths), None if has_out_field else out, options, taxonomy, cache_dir,
                     engine)

    params = [
        _in_option(),
        _out_option(stage.Options.model_fields["out"].description if has_out_field else None),
        taxonomy_option(),
        click.Option(["--cache-dir"], type=click.Path(file_okay=False, path_type=Path),
                     help="Folder for caches (default: .curate-cache beside the output)."),
        *options_from_model(stage.Options, {"in_", "out"}),
        *engine_params(),
    ]
    return click.Command(stage.name, callback=callback, params=params, help=stage.help + "\n\nRuns the stage alone on "
                         "files; the same options are the stage's keys in a pipeline YAML.")


# collect: one source from flags (SourceSpec's fields; its FieldMap as --<field>-field) or a YAML list of sources
_SOURCE_SKIP = {"path", "hf", "fields"}


def _source_flags() -> list[click.Option]:
    from curate.collect.sources import FieldMap, HFDataset, SourceSpec

    field_flags = {name: f"--{'label' if name == 'labels' else name}-field" for name in FieldMap.model_fields}
    hf_split = HFDataset.model_fields["split"]
    return [
        *options_from_model(SourceSpec, _SOURCE_SKIP),
        *options_from_model(FieldMap, flags=field_flags),
        click.Option(["--hf", "hf_name"], help="Read a Hugging Face dataset (name or local path) instead of --in."),
        click.Option(["--split"], default=hf_split.default, show_default=True, help=hf_split.description),
    ]


def collect_command() -> click.Command:
    from curate.collect.sources import FieldMap, SourceSpec

    @handle_errors
    def callback(in_paths, out, sources_file, taxonomy, hf_name, split, **given) -> None:
        """Read sources into records: normalise text, detect language, map source labels to the taxonomy.
        Malformed lines go to <out>.quarantine.jsonl with file, line and reason; the run goes on."""
        from curate.collect import CollectOptions
        from curate.config import load_yaml, validation_message

        if sources_file:
            raw = load_yaml(sources_file)
            sources = raw.get("sources", raw) if isinstance(raw, dict) else raw
            if not isinstance(sources, list) or not sources:
                raise UserError(f"{sources_file}: expected a list of sources (or a mapping with 'sources: [...]')")
            base = sources_file.parent
        else:
            if not in_paths and not hf_name:
                raise UserError("give --in PATH, --hf NAME or --sources FILE")
            spec: dict[str, Any] = given_values(SourceSpec, {k: v for k, v in given.items() if k in SourceSpec.model_fields})
            fields = given_values(FieldMap, {k: v for k, v in given.items() if k in FieldMap.model_fields})
            if not spec.get("preset"):
                spec["fields"] = fields
            if hf_name:
                sources = [{**spec, "hf": {"name": hf_name, "split": split}}]
            else:
                name = spec.get("name") or spec.get("preset")
                sources = [{**spec, "path": str(p), **({"name": f"{name}-{i}"} if len(in_paths) > 1 else {})}
                           for i, p in enumerate(in_paths)]
            base = Path.cwd()
        try:
            options = CollectOptions.model_validate({"sources": sources}, context={"base_dir": base})
        except ValidationError as exc:
            raise UserError(validation_message(exc)) from None
        run_on_files("collect", [], out, options, taxonomy, None)

    params = [
        click.Option(["--in", "in_paths"], multiple=True, type=click.Path(path_type=Path),
                     help="Source file or folder (a preset's dataset folder). Repeat for several files of one source."),
        click.Option(["--out"], required=True, type=click.Path(path_type=Path), help="Output records file or folder."),
        click.Option(["--sources", "sources_file"], type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="YAML file with a list of sources (the same keys as collect.sources in a pipeline)."),
        taxonomy_option(),
        *_source_flags(),
    ]
    return click.Command("collect", callback=callback, params=params, help=callback.__doc__)


def lazy_commands() -> dict[str, Callable[[], click.Command]]:
    """One command per stage, built when it is asked for (only that stage's package is imported)."""
    from curate.stage import STAGE_MODULES

    return {name: functools.partial(command_for, name) for name in STAGE_MODULES}


def command_for(name: str) -> click.Command:
    if name == "collect":
        return collect_command()
    from curate.stage import load_stage

    return stage_command(load_stage(name))
