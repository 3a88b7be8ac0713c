"""The `curate` command line: thin wrappers that parse options, call stage functions and print summaries.

Every stage's options come from its pydantic ``Options`` model, so the YAML keys and the CLI flags
are one definition (``threshold`` in YAML is ``--threshold`` here).
"""
from __future__ import annotations

import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, get_args, get_origin

import click
from pydantic import BaseModel, ValidationError

from curate import __version__
from curate.engine.cli import FLAGS as ENGINE_FLAGS, engine_options, engine_params, settings_from_flags

EXIT_USAGE = 2
EXIT_FAILED = 1


class UserError(click.ClickException):
    """A one-line error for the user: no traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = code

    def show(self, file=None) -> None:
        click.secho(f"error: {self.format_message()}", fg="red", err=True)


def _handle_errors(fn: Callable) -> Callable:
    """Turn the errors users can fix into one line and an exit code; a bug still shows its traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from curate.config import ConfigError
        from curate.io import InputError
        from curate.pipeline import StageFailed
        from curate.records import SchemaError
        from curate.taxonomy import TaxonomyError

        try:
            return fn(*args, **kwargs)
        except (ConfigError, InputError, TaxonomyError) as exc:
            raise UserError(str(exc), EXIT_USAGE) from None
        except (SchemaError, StageFailed) as exc:
            raise UserError(str(exc), EXIT_FAILED) from None
        except OSError as exc:  # disk full, read-only folder, permission: say which path
            if os.environ.get("CURATE_DEBUG"):
                raise
            raise UserError(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), EXIT_FAILED) from None
        except Exception as exc:
            from curate.review.client import ReviewError

            if isinstance(exc, ReviewError):  # Label Studio down, wrong token, missing project: one line
                raise UserError(str(exc), EXIT_FAILED) from None
            raise
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="curate")
def main() -> None:
    """curate: build bilingual (zh/en) safety training corpora for reasoning LLMs.

    Stages: collect -> dedup -> classify -> synthesize -> review -> balance -> export.
    Run them all from a YAML recipe with `curate run`, or one at a time on files with
    `curate <stage> --in PATH --out PATH`.
    """


@main.command("run")
@click.argument("pipeline", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: run_dir from the YAML, else ./runs/<name>).")
@click.option("--from", "from_stage", metavar="STAGE", help="Re-run from this stage on (earlier stages are reused).")
@click.option("--to", "to_stage", metavar="STAGE", help="Stop after this stage.")
@click.option("--force", is_flag=True, help="Re-run every stage even if its config and input did not change.")
@engine_options
@_handle_errors
def run_command(pipeline: Path, run_dir: Path | None, from_stage: str | None, to_stage: str | None, force: bool,
                **engine_flags) -> None:
    """Run a pipeline YAML. Finished stages whose config and input did not change are skipped;
    a changed stage re-runs with everything after it. Ends with the funnel: every collected record is
    exported, pending, or dropped with a reason."""
    from curate import funnel
    from curate.config import load_pipeline
    from curate.pipeline import run_pipeline

    engine = settings_from_flags(load_pipeline(pipeline)[0].engine_settings(), **engine_flags)
    result = run_pipeline(pipeline, run_dir=run_dir, from_stage=from_stage, to_stage=to_stage, force=force,
                          log=lambda m: click.echo(m, err=True), engine=engine)
    funnel.render(result.funnel, title=f"Funnel of {result.run_dir}")
    if not result.funnel.balanced:
        raise UserError("funnel totals do not add up: some records are unaccounted for", EXIT_FAILED)


# ----------------------------------------------------------------------------------------------
# Stage commands generated from Options models


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap_optional(args[0])
    if get_origin(annotation) is typing.Annotated:
        return _unwrap_optional(get_args(annotation)[0])
    return annotation


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, is structured) for one annotation; structured values are parsed as YAML/JSON text."""
    annotation = _unwrap_optional(annotation)
    if get_origin(annotation) is Literal:
        return click.Choice([str(a) for a in get_args(annotation)]), False
    if annotation in (int, float, str):
        return annotation, False
    if annotation is Path:
        return click.Path(path_type=Path), False
    return str, True


def options_from_model(model: type[BaseModel], skip: set[str]) -> list[click.Option]:
    params = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        annotation = _unwrap_optional(field.annotation)
        default = field.get_default(call_default_factory=True)
        shown = "" if default in (None, [], {}) or isinstance(default, BaseModel) else f" [default: {default}]"
        help_text = (field.description or "") + shown
        if annotation is bool:
            params.append(click.Option([f"{flag}/--no-{flag[2:]}"], default=None, help=help_text))
        elif get_origin(annotation) in (list, tuple, set):
            item = (get_args(annotation) or (str,))[0]
            ctype, structured = _click_type(item)
            params.append(click.Option([flag, name], multiple=True, type=ctype,
                                       help=help_text + (" (YAML/JSON)" if structured else " (repeatable)")))
        else:
            ctype, structured = _click_type(annotation)
            params.append(click.Option([flag, name], type=ctype, default=None,
                                       help=help_text + (" (YAML/JSON text)" if structured else "")))
    return params


def parse_options(model: type[BaseModel], given: dict[str, Any], base_dir: Path) -> BaseModel:
    import yaml

    values: dict[str, Any] = {}
    for name, value in given.items():
        if value is None or value == ():
            continue
        field = model.model_fields[name]
        annotation = _unwrap_optional(field.annotation)
        structured = _click_type(annotation)[1] if get_origin(annotation) not in (list, tuple, set) else \
            _click_type((get_args(annotation) or (str,))[0])[1]
        if structured:
            value = [yaml.safe_load(v) for v in value] if isinstance(value, tuple) else yaml.safe_load(value)
        values[name] = list(value) if isinstance(value, tuple) else value
    try:
        return model.model_validate(values, context={"base_dir": base_dir})
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "options"
        msg = "unknown option" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        raise UserError(f"{flag}: {msg}") from None


def run_stage_on_files(stage_name: str, in_paths: list[Path], out_path: Path | None, options: BaseModel,
                       taxonomy: Path | None, cache_dir: Path | None, engine=None) -> None:
    """Run one stage alone: read records, run, check the contract, write records and quarantine, print the funnel."""
    import polars as pl

    from curate import funnel, records
    from curate.engine import open_engine
    from curate.io import read_records, write_records
    from curate.pipeline import run_stage
    from curate.stage import StageContext, available_stages
    from curate.store import QuarantineBuffer, write_json

    stage = available_stages()[stage_name]
    df = records.empty() if stage.creates_rows else pl.concat([read_records(p) for p in in_paths], how="vertical")
    anchor = out_path if out_path is not None else (in_paths[0] if in_paths else Path("."))
    work_dir = cache_dir or anchor.parent / ".curate-cache"
    work_dir.mkdir(parents=True, exist_ok=True)
    quarantine = QuarantineBuffer(stage_name)
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    with open_engine(engine, log) as opened:
        ctx = StageContext(stage=stage_name, work_dir=work_dir, taxonomy_path=taxonomy, quarantine=quarantine,
                           log=log, engine=opened)
        out = run_stage(stage, df, options, ctx)
    if out_path is not None:
        write_records(out, out_path)
        click.echo(f"wrote {out.height:,} records to {out_path}", err=True)
    if quarantine.rows:
        qpath = anchor.with_name(anchor.name.split(".")[0] + ".quarantine.jsonl")
        with open(qpath, "w", encoding="utf-8") as fh:
            for row in quarantine.rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        click.echo(f"quarantined {len(quarantine.rows):,} input lines: {qpath}", err=True)
    if ctx.stats and out_path is not None:
        write_json(anchor.with_name(anchor.name.split(".")[0] + ".stats.json"), ctx.stats)
    funnel.render(funnel.compute(out, quarantined=len(quarantine.rows)), title=f"{stage_name}: records")


def make_stage_command(stage) -> click.Command:
    has_out_field = "out" in stage.Options.model_fields
    skip = {"in_", "out"} if has_out_field else {"in_"}

    @_handle_errors
    def callback(in_paths, out, taxonomy, cache_dir, **given):
        if has_out_field:
            given["out"] = out
        engine = settings_from_flags(None, **{flag: given.pop(flag) for flag in ENGINE_FLAGS})
        options = parse_options(stage.Options, given, Path.cwd())
        run_stage_on_files(stage.name, list(in_paths), None if has_out_field else out, options, taxonomy, cache_dir,
                           engine)

    params = [
        click.Option(["--in", "in_paths"], multiple=True, required=True, type=click.Path(path_type=Path),
                     help="Input records: .jsonl, .jsonl.gz, .csv, .parquet or a folder of parquet shards (repeatable)."),
        click.Option(["--out", "out"], required=True, type=click.Path(path_type=Path),
                     help="Output: a records file (.jsonl/.jsonl.gz/.csv/.parquet) or a folder for parquet shards."
                     if not has_out_field else stage.Options.model_fields["out"].description),
        click.Option(["--taxonomy"], type=click.Path(file_okay=False, exists=True, path_type=Path),
                     help="Taxonomy folder (default: the one shipped with curate)."),
        click.Option(["--cache-dir"], type=click.Path(file_okay=False, path_type=Path),
                     help="Folder for caches (default: .curate-cache beside the output)."),
        *options_from_model(stage.Options, skip),
        *engine_params(),
    ]
    return click.Command(stage.name, callback=callback, params=params, help=stage.help + "\n\nRuns the stage alone on "
                         "files; the same options are the stage's keys in a pipeline YAML.")


def _register_stage_commands() -> None:
    from curate.stage import available_stages

    for name, stage in available_stages().items():
        if name == "collect":
            continue  # collect has its own command: its sources are not flat options
        if name in main.commands:
            continue
        main.add_command(make_stage_command(stage))


# ----------------------------------------------------------------------------------------------
# collect: sources from flags or a YAML list


@main.command("collect")
@click.option("--in", "in_paths", multiple=True, type=click.Path(path_type=Path),
              help="Source file or folder (a preset's dataset folder). Repeat for several files of one source.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output records file or folder.")
@click.option("--preset", help="Known dataset layout (see `curate presets`).")
@click.option("--name", help="Source name stored on every row (default: the preset name).")
@click.option("--license", "license_", help="Licence of the source (required without a preset).")
@click.option("--format", "fmt", type=click.Choice(["auto", "jsonl", "json", "csv", "parquet"]), default="auto",
              show_default=True, help="File format.")
@click.option("--hf", "hf_name", help="Read a Hugging Face dataset (name or local path) instead of --in.")
@click.option("--split", default="train", show_default=True, help="Split of the --hf dataset.")
@click.option("--prompt-field", default="prompt", show_default=True, help="Field with the prompt (generic sources).")
@click.option("--response-field", help="Field with the answer (may contain <think>...</think>).")
@click.option("--id-field", help="Field with the row id (default: file and line number).")
@click.option("--label-field", "label_fields", multiple=True, help="Field whose values are source labels (repeatable).")
@click.option("--label-set", help="Taxonomy mapping file for the labels (default: the preset's).")
@click.option("--role", type=click.Choice(["safety", "general"]), help="general = capability data mixed as is.")
@click.option("--harmful/--not-harmful", default=None, help="prompt_harmful when the labels do not decide it.")
@click.option("--limit", type=int, help="Read at most this many rows.")
@click.option("--sources", "sources_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file with a list of sources (the same keys as collect.sources in a pipeline).")
@click.option("--taxonomy", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Taxonomy folder (default: the one shipped with curate).")
@_handle_errors
def collect_command(in_paths, out, preset, name, license_, fmt, hf_name, split, prompt_field, response_field, id_field,
                    label_fields, label_set, role, harmful, limit, sources_file, taxonomy) -> None:
    """Read sources into records: normalise text, detect language, map source labels to the taxonomy.
    Malformed lines go to <out>.quarantine.jsonl with file, line and reason; the run goes on."""
    import yaml

    from curate.collect import CollectOptions

    if sources_file:
        raw = yaml.safe_load(sources_file.read_text(encoding="utf-8"))
        sources = raw.get("sources", raw) if isinstance(raw, dict) else raw
        base = sources_file.parent
    else:
        if not in_paths and not hf_name:
            raise UserError("give --in PATH, --hf NAME or --sources FILE")
        spec: dict[str, Any] = {"format": fmt}
        for key, value in (("preset", preset), ("name", name), ("license", license_), ("label_set", label_set),
                           ("role", role), ("harmful", harmful), ("limit", limit)):
            if value is not None:
                spec[key] = value
        if not preset:
            spec["fields"] = {"prompt": prompt_field, "response": response_field, "id": id_field,
                              "labels": list(label_fields)}
        if hf_name:
            spec["hf"] = {"name": hf_name, "split": split}
            sources = [spec]
        else:
            sources = [{**spec, "path": str(p), **({"name": f"{name or preset}-{i}"} if len(in_paths) > 1 else {})}
                       for i, p in enumerate(in_paths)]
        base = Path.cwd()
    try:
        options = CollectOptions.model_validate({"sources": sources}, context={"base_dir": base})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg'].removeprefix('Value error, ')}") from None
    run_stage_on_files("collect", [], out, options, taxonomy, None)


@main.command("presets")
def presets_command() -> None:
    """List the built-in dataset presets: files, label set, licence."""
    from rich.console import Console
    from rich.table import Table

    from curate.collect.presets import PRESETS

    table = Table(title="collect presets")
    for col in ("preset", "dataset", "files", "label set", "licence", "role"):
        table.add_column(col)
    for p in PRESETS.values():
        table.add_row(p.name, p.description, ", ".join(p.files), p.label_set or "-", p.license, p.role)
    Console().print(table)


@main.group("taxonomy")
def taxonomy_group() -> None:
    """The harm taxonomy: dimensions (zh/en names, definitions, response policies) and label mappings."""


@taxonomy_group.command("validate")
@click.option("--taxonomy", "path", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Taxonomy folder to check (default: the one shipped with curate).")
def taxonomy_validate(path: Path | None) -> None:
    """Check that every mapped label points at an existing dimension, every dimension has zh and en
    text, and every refinement rule compiles. Exit 1 with the list of problems."""
    from curate.taxonomy import Taxonomy, validate_taxonomy

    problems = validate_taxonomy(path)
    if problems:
        for problem in problems:
            click.secho(f"- {problem}", fg="red", err=True)
        raise UserError(f"{len(problems)} problem(s) in the taxonomy", EXIT_FAILED)
    taxonomy = Taxonomy.load(path)
    click.echo(f"taxonomy ok: {len(taxonomy.harm_ids)} dimensions, {len(taxonomy.label_sets())} label mappings")


@taxonomy_group.command("show")
@click.option("--taxonomy", "path", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Taxonomy folder (default: the one shipped with curate).")
@_handle_errors
def taxonomy_show(path: Path | None) -> None:
    """List the dimensions with their English and Chinese names and response mode."""
    from rich.console import Console
    from rich.table import Table

    from curate.taxonomy import Taxonomy

    taxonomy = Taxonomy.load(path)
    table = Table(title="harm dimensions")
    for col in ("id", "key", "English", "中文", "response"):
        table.add_column(col)
    for dim in [taxonomy.safe, *taxonomy.dimensions]:
        table.add_row(dim.id, dim.key, dim.name_en, dim.name_zh, getattr(dim, "response_mode", ""))
    Console().print(table)


@main.group("classifier")
def classifier_group() -> None:
    """Train and evaluate the harm-dimension classifier (fastText prompt model + response-kind model)."""


@classifier_group.command("train")
@click.option("--in", "in_paths", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled records (e.g. the output of `curate collect`); repeatable.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Model folder to write (model files, thresholds, metadata).")
@click.option("--taxonomy", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Taxonomy folder (default: the one shipped with curate).")
@click.option("--calibration", type=click.Choice(["cross_source", "holdout", "none"]), default="cross_source",
              show_default=True, help="Thresholds from scores of models trained without each group of sources "
              "(cross_source), from a held-out share of rows (holdout), or fixed defaults (none).")
@click.option("--val-fraction", default=0.15, show_default=True, type=float,
              help="With --calibration holdout: share of rows (by id hash) held out to calibrate thresholds.")
@click.option("--group-cap", default=2500, show_default=True, type=int,
              help="At most this many rows per (source, language), so one big source does not define a language.")
@click.option("--group-floor", default=400, show_default=True, type=int,
              help="Small (source, language) groups are repeated up to this many rows.")
@click.option("--taxonomy-examples", default=20, show_default=True, type=int,
              help="Copies of each dimension's definition added as training lines (0 = off).")
@click.option("--epoch", type=int, help="fastText epochs of the prompt model (default: the tuned value).")
@click.option("--embed-weight", default=0.7, show_default=True, type=click.FloatRange(0, 1),
              help="Share of the sentence-embedding layer in the blended scores (0 = fastText only, no layer; "
              "training encodes every row at ~250 rows/s per core).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed (training is reproducible with 1 thread).")
@click.option("--threads", default=1, show_default=True, type=int, help="Training threads (>1: faster, not reproducible).")
@_handle_errors
def classifier_train(in_paths, out, taxonomy, calibration, val_fraction, group_cap, group_floor, taxonomy_examples,
                     epoch, embed_weight, seed, threads) -> None:
    """Train the prompt model (multi-label S00-S14) and the response-kind model on labelled records,
    calibrate per-dimension thresholds on held-out rows, and save the model folder."""
    from curate.classify.cli_api import train

    meta = train(list(in_paths), out, taxonomy=taxonomy, val_fraction=val_fraction, group_cap=group_cap,
                 group_floor=group_floor, taxonomy_examples=taxonomy_examples, epoch=epoch, calibration=calibration,
                 embed_weight=embed_weight, seed=seed, threads=threads)
    click.echo(f"model saved to {out} ({(meta.get('training') or {}).get('train_rows', '?')} training rows)")


@classifier_group.command("eval")
@click.option("--in", "in_paths", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled records to score against; repeatable.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Model folder (default: the model shipped with curate).")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@_handle_errors
def classifier_eval(in_paths, model_dir, as_json) -> None:
    """Per-dimension precision/recall/F1, macro-F1 and binary harmful-vs-safe F1, for zh and en separately."""
    from curate.classify.cli_api import evaluate, format_report

    result = evaluate(list(in_paths), model_dir)
    click.echo(json.dumps(result, ensure_ascii=False, indent=1, default=str) if as_json else format_report(result))


@main.group("review")
def review_group() -> None:
    """Human review in Label Studio (LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY from the environment)."""


@review_group.command("push")
@click.option("--in", "in_path", required=True, type=click.Path(exists=True, path_type=Path), help="Records to sample from.")
@click.option("--project", required=True, help="Label Studio project title (created if missing, reused if present).")
@click.option("--sample", type=int, default=200, show_default=True, help="Records to send (0 or negative: all).")
@click.option("--strategy", type=click.Choice(["stratified", "uncertain", "disagreement", "all"]), default="stratified",
              show_default=True, help="stratified by dimension x language; uncertain = low classifier confidence "
              "first; disagreement = source vs classifier first; all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option("--overlap", type=int, default=1, show_default=True, help="Annotators per task (2+ measures agreement).")
@click.option("--batch-size", type=int, default=100, show_default=True, help="Tasks per import request.")
@click.option("--taxonomy", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Taxonomy folder (default: the one shipped with curate).")
@_handle_errors
def review_push(in_path, project, sample, strategy, seed, overlap, batch_size, taxonomy) -> None:
    """Create or update the project and import the sample as tasks with pre-annotations. Idempotent: a
    second push imports only tasks that are missing (tasks carry the record id)."""
    from curate.review.cli_api import push

    push(in_path, project, sample if sample and sample > 0 else None, strategy, seed=seed, overlap=overlap,
         batch_size=batch_size, taxonomy_path=taxonomy, log=click.echo)


@review_group.command("pull")
@click.option("--in", "in_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="The records that were pushed.")
@click.option("--project", required=True, help="Label Studio project title.")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="Merged records to write.")
@click.option("--conflict", type=click.Choice(["majority", "adjudicate"]), default="majority", show_default=True,
              help="Several annotators disagree: majority vote, or flag for adjudication (no override).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the incremental pull state lives (default: .curate-review beside --out).")
@click.option("--taxonomy", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Taxonomy folder (default: the one shipped with curate).")
@_handle_errors
def review_pull(in_path, project, out_path, conflict, state_dir, taxonomy) -> None:
    """Fetch new annotations and merge them: human dimensions override (label_origin=human), edited
    answers replace the old (kept in meta), rejected rows get drop_reason rejected_in_review."""
    from curate.review.cli_api import pull

    pull(in_path, project, out_path, conflict, state_dir=state_dir, taxonomy_path=taxonomy, log=click.echo)


@review_group.command("status")
@click.option("--project", required=True, help="Label Studio project title.")
@click.option("--taxonomy", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Taxonomy folder (default: the one shipped with curate).")
@_handle_errors
def review_status(project, taxonomy) -> None:
    """Done and pending tasks per stratum (dimension x language) and agreement so far."""
    from curate.review.cli_api import status

    result = status(project, taxonomy_path=taxonomy)
    click.echo(json.dumps(result, ensure_ascii=False, indent=1, default=str))


@main.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (default RUN_DIR/report.html); the Markdown twin goes beside it.")
@_handle_errors
def report_command(run_dir: Path, out: Path | None) -> None:
    """Write a self-contained HTML report of a run (and a Markdown version): funnel, dimensions x
    languages, balancing, lengths, duplicates, classifier confidence, synthesis, review, sample rows."""
    from curate.report import write_report

    try:
        path = write_report(run_dir, out)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"report: {path} (and {path.with_suffix('.md')})")


_register_stage_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
