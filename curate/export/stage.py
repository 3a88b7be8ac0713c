"""The export stage: kept rows with a response -> hub-style folder with card, plots and recipe; optional push."""
from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from curate.export import hub
from curate.export.card import build_card
from curate.export.folder import ExportError, staged_folder, write_split
from curate.export.formats import to_prompt_table, to_table
from curate.export.options import ExportOptions
from curate.export.plots import write_plots
from curate.export.summary import exportable, is_prompt_set, load_manifests, prepare, summarize_run
from curate.stage import StageContext

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
        return Path(ctx.run_dir) / "export"
    raise ExportError("export needs an output folder (out / --out)")


def run(df: pl.DataFrame, opts: ExportOptions, ctx: StageContext) -> pl.DataFrame:
    target = output_folder(opts, ctx)
    if opts.push_to_hub:
        hub.require_token()  # fail before the work, not after it
    prompt_set = is_prompt_set(df, opts.content)
    rows, kinds, pending = prepare(df, prompt_set)
    if not rows:
        what = "kept" if prompt_set else "kept with a response"
        raise ExportError(f"nothing to export: of {df.height:,} rows none is {what} "
                          f"({pending:,} pending synthesis, {df.height - pending:,} dropped)")
    manifests = load_manifests(ctx.run_dir)
    summary = summarize_run(df, rows, kinds, manifests, prompt_set=prompt_set)
    # The same rows prepare() returned, in the same order, with their kinds; no split = train.
    exported = exportable(df, prompt_set).with_columns(pl.Series("kind", kinds, dtype=pl.Utf8),
                                                       pl.col("split").fill_null("train"))
    recipe = Path(ctx.run_dir) / "config.resolved.yaml" if ctx.run_dir else None
    with staged_folder(target) as folder:
        data_files = {}
        with ctx.progress(len(summary.splits), "writing splits") as bar:
            for split in summary.splits:
                part = exported.filter(pl.col("split") == split)
                table = to_prompt_table(part) if prompt_set else to_table(part, opts.format, opts.reasoning)
                data_files[split] = write_split(folder, split, table, opts.shard_rows)
                bar.advance()
        plots = {}
        if opts.plots:
            plots = write_plots(folder, df, exported, summary)
        has_recipe = bool(recipe and recipe.is_file())
        if has_recipe:
            shutil.copyfile(recipe, folder / RECIPE)  # already redacted by the run store
        card = build_card(summary, pretty_name=opts.pretty_name or target.name, data_files=data_files,
                          fmt=opts.format, reasoning=opts.reasoning, names=taxonomy_names(ctx), plots=plots,
                          description=opts.description, has_recipe=has_recipe)
        card.save(str(folder / "README.md"))
    ctx.stats.update({"out": str(target), "exported": summary.exported,
                      "content": "prompts" if prompt_set else "answers", "splits": summary.splits,
                      "pending_left_out": pending, "license": summary.licenses.license,
                      "non_commercial_sources": summary.licenses.non_commercial, "format": opts.format,
                      "reasoning": opts.reasoning})
    what = "prompts awaiting synthesis" if prompt_set else "rows"
    ctx.log(f"exported {summary.exported:,} {what} ({', '.join(f'{k}: {v:,}' for k, v in summary.splits.items())}) "
            f"to {target}; license {summary.licenses.license}" + (f"; {pending:,} pending rows left out" if pending else ""))
    if opts.push_to_hub:
        url = hub.push_folder(target, opts.push_to_hub, private=opts.private)
        ctx.stats["pushed"] = url
        ctx.log(f"pushed to the hub: {url}")
    return df
