"""The export stage: kept rows with a response -> hub-style folder with card, plots and recipe; optional push."""
from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from curate import records
from curate.export import hub
from curate.export.card import build_card
from curate.export.folder import ExportError, check_replaceable, staged_folder, write_split
from curate.export.formats import to_prompt_table, to_table
from curate.export.options import ExportOptions
from curate.export.plots import write_plots
from curate.stage import StageContext
from curate.store import RunStore, redact_text
from curate.summary import SUMMARY_FACTS, dataset_rows, is_prompt_set, summarize
from curate.text import strip_invisible_expr

RECIPE = "recipe.yaml"
# What the card and plots keep of every row (of the answers, whether each row has one); the exported rows are read
# whole. categories: the before/after-balance plot.
EVERY_ROW_FACTS = [*SUMMARY_FACTS, pl.col("categories")]


def taxonomy_names(ctx: StageContext) -> dict[str, tuple[str, str]]:
    """Dimension id -> (English name, Chinese name)."""
    from curate.taxonomy import Taxonomy

    return {d.id: (d.name_en, d.name_zh) for d in Taxonomy.load(ctx.taxonomy_path).dimensions}


def output_folder(opts: ExportOptions, ctx: StageContext) -> Path:
    if opts.out is not None:
        return Path(opts.out)
    if ctx.run_dir is not None:
        return RunStore.existing(ctx.run_dir).export_dir
    raise ExportError("export needs an output folder (out / --out)")


def _exported_rows(df: pl.DataFrame | pl.LazyFrame, ctx: StageContext, prompt_set: bool) -> pl.DataFrame:
    """The rows the dataset holds: a shard at a time when the runner gave the shards, each part copied out through
    Arrow (a filtered polars frame keeps its source's whole string buffers: the 50,000 exported of 1M answered rows
    held 3.2 GB), else over ``df`` at once."""
    if not ctx.shards:
        return dataset_rows(df.lazy(), prompt_set).collect()
    return pl.concat([pl.from_arrow(dataset_rows(pl.scan_parquet(p), prompt_set).collect().to_arrow())
                      for p in ctx.shards], how="vertical")


def run(df: pl.DataFrame | pl.LazyFrame, opts: ExportOptions, ctx: StageContext) -> pl.DataFrame | pl.LazyFrame:
    """Writes the dataset folder and returns ``df`` as it came. ``df`` may be lazy (the runner scans the run's
    shards, ``Stage.sink``): then only the exported rows are read whole."""
    target = output_folder(opts, ctx)
    check_replaceable(target, ctx.run_dir)  # before the work: a folder that is not ours is refused at once
    if opts.push_to_hub:
        hub.require_token()  # fail before the work, not after it
    every_row = ctx.derived(df, EVERY_ROW_FACTS)  # a shard at a time when the runner gave the shards
    prompt_set = is_prompt_set(every_row, opts.content)
    exported = _exported_rows(df, ctx, prompt_set)
    pending = records.kept(every_row).height - exported.height
    if not exported.height:
        what = "kept" if prompt_set else "kept with a response"
        raise ExportError(f"nothing to export: of {every_row.height:,} rows none is {what} "
                          f"({pending:,} pending synthesis, {every_row.height - pending:,} dropped)")
    run = RunStore.existing(ctx.run_dir) if ctx.run_dir is not None and Path(ctx.run_dir).is_dir() else None
    summary = summarize(every_row, run.manifests() if run else [], exported=exported, prompt_set=prompt_set)
    dataset = summary.dataset
    recipe = run.recipe_path if run else None
    # Invisible characters are stripped again at the door: answers written by a model never went through collect.
    exported = exported.with_columns(*(strip_invisible_expr(c) for c in ("prompt", "response", "reasoning")))
    with staged_folder(target, ctx.run_dir) as folder:
        data_files = {}
        with ctx.progress(len(dataset.splits), "writing splits") as bar:
            for split in dataset.splits:
                part = exported.filter(pl.col("split") == split)
                table = to_prompt_table(part) if prompt_set else to_table(part, opts.format, opts.reasoning)
                data_files[split] = write_split(folder, split, table, opts.shard_rows)
                bar.advance()
        plots = {}
        if opts.plots:
            plots = write_plots(folder, every_row, exported, dataset)
        has_recipe = bool(recipe and recipe.is_file())
        if has_recipe:
            shutil.copyfile(recipe, folder / RECIPE)  # already redacted by the run store
        card = build_card(summary, pretty_name=redact_text(opts.pretty_name or target.name), data_files=data_files,
                          fmt=opts.format, reasoning=opts.reasoning, names=taxonomy_names(ctx), plots=plots,
                          description=opts.description and redact_text(opts.description), has_recipe=has_recipe)
        card.save(str(folder / "README.md"))
    ctx.stats.update({"out": str(target), "exported": dataset.total,
                      "content": "prompts" if prompt_set else "answers", "splits": dataset.splits,
                      "pending_left_out": pending, "license": dataset.licenses.license,
                      "non_commercial_sources": dataset.licenses.non_commercial, "format": opts.format,
                      "reasoning": opts.reasoning})
    what = "prompts awaiting synthesis" if prompt_set else "rows"
    ctx.log(f"exported {dataset.total:,} {what} ({', '.join(f'{k}: {v:,}' for k, v in dataset.splits.items())}) "
            f"to {target}; license {dataset.licenses.license}" + (f"; {pending:,} pending rows left out" if pending else ""))
    if opts.push_to_hub:
        url = hub.push_folder(target, opts.push_to_hub, private=opts.private)
        ctx.stats["pushed"] = url
        ctx.log(f"pushed to the hub: {url}")
    return df
