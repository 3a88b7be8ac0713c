"""The export stage: kept rows with a response -> hub-style folder with card, plots and recipe; optional push."""
from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from curate import records
from curate.export import hub
from curate.export.card import build_card
from curate.export.folder import ExportError, staged_folder, write_split
from curate.export.formats import to_table
from curate.export.options import ExportOptions
from curate.export.plots import write_plots
from curate.stage import StageContext
from curate.store import RunStore
from curate.summary import dataset_rows, summarize

RECIPE = "recipe.yaml"


def taxonomy_names(ctx: StageContext) -> dict[str, tuple[str, str]]:
    """Dimension id -> (English name, Chinese name); empty when no taxonomy module is installed."""
    try:
        from curate.taxonomy import Taxonomy
    except ModuleNotFoundError:
        return {}
    return {d.id: (d.name_en, d.name_zh) for d in Taxonomy.load(ctx.taxonomy_path).dimensions}


def output_folder(opts: ExportOptions, ctx: StageContext) -> Path:
    if opts.out is not None:
        return Path(opts.out)
    if ctx.run_dir is not None:
        return RunStore.existing(ctx.run_dir).export_dir
    raise ExportError("export needs an output folder (out / --out)")


def run(df: pl.DataFrame, opts: ExportOptions, ctx: StageContext) -> pl.DataFrame:
    target = output_folder(opts, ctx)
    if opts.push_to_hub:
        hub.require_token()  # fail before the work, not after it
    exported = dataset_rows(df)
    pending = records.kept(df).height - exported.height
    if not exported.height:
        raise ExportError(f"nothing to export: of {df.height:,} rows none is kept with a response "
                          f"({pending:,} pending synthesis, {df.height - pending:,} dropped)")
    run = RunStore.existing(ctx.run_dir) if ctx.run_dir is not None and Path(ctx.run_dir).is_dir() else None
    summary = summarize(df, run.manifests() if run else [], exported=exported)
    dataset = summary.dataset
    recipe = run.recipe_path if run else None
    with staged_folder(target) as folder:
        data_files = {}
        with ctx.progress(len(dataset.splits), "writing splits") as bar:
            for split in dataset.splits:
                table = to_table(exported.filter(pl.col("split") == split), opts.format, opts.reasoning)
                data_files[split] = write_split(folder, split, table, opts.shard_rows)
                bar.advance()
        plots = {}
        if opts.plots:
            plots = write_plots(folder, df, exported, dataset)
        has_recipe = bool(recipe and recipe.is_file())
        if has_recipe:
            shutil.copyfile(recipe, folder / RECIPE)  # already redacted by the run store
        card = build_card(summary, pretty_name=opts.pretty_name or target.name, data_files=data_files,
                          fmt=opts.format, reasoning=opts.reasoning, names=taxonomy_names(ctx), plots=plots,
                          description=opts.description, has_recipe=has_recipe)
        card.save(str(folder / "README.md"))
    ctx.stats.update({"out": str(target), "exported": dataset.total, "splits": dataset.splits,
                      "pending_left_out": pending, "license": dataset.licenses.license,
                      "non_commercial_sources": dataset.licenses.non_commercial, "format": opts.format,
                      "reasoning": opts.reasoning})
    ctx.log(f"exported {dataset.total:,} rows ({', '.join(f'{k}: {v:,}' for k, v in dataset.splits.items())}) "
            f"to {target}; license {dataset.licenses.license}" + (f"; {pending:,} pending rows left out" if pending else ""))
    if opts.push_to_hub:
        url = hub.push_folder(target, opts.push_to_hub, private=opts.private)
        ctx.stats["pushed"] = url
        ctx.log(f"pushed to the hub: {url}")
    return df
