"""Plain functions behind `curate classifier train` and `curate classifier eval` (the CLI wires them)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import polars as pl

from curate.classify.evaluate import evaluate_frame, kind_report
from curate.classify.model import ClassifierModel, load_model
from curate.classify.train import TrainConfig, train_model


def _read(paths: str | Path | list[str | Path]) -> pl.DataFrame:
    from curate.io import read_records

    items = paths if isinstance(paths, (list, tuple)) else [paths]
    return pl.concat([read_records(p) for p in items], how="vertical")


def train_flags() -> list[Any]:
    """The click options of `curate classifier train`, one per TrainConfig field that has a help text: the flag,
    its default and its help come from TrainConfig, so they cannot disagree with it."""
    import click

    flags = []
    for f in dataclasses.fields(TrainConfig):
        if "help" not in f.metadata:
            continue
        kind = click.Choice(f.metadata["choices"]) if "choices" in f.metadata else \
            click.FloatRange(*f.metadata["range"]) if "range" in f.metadata else type(f.default)
        flags.append(click.Option(["--" + f.name.replace("_", "-"), f.name], type=kind, default=f.default,
                                  show_default=True, help=f.metadata["help"]))
    return flags


def train(in_path: str | Path | list[str | Path], out_dir: str | Path, *, taxonomy: str | Path | None = None,
          epoch: int | None = None, **config: Any) -> dict[str, Any]:
    """Train a classifier model on labelled records and save it to ``out_dir``.

    ``in_path``: records file(s) (.jsonl/.jsonl.gz/.csv/.parquet/parquet folder), e.g. the output of
    `curate collect`. Rows teach the prompt model their ``categories``, or S00 when ``prompt_harmful`` is
    false; rows with ``response`` and ``response_kind`` teach the response-kind model.
    ``config``: TrainConfig fields (its defaults otherwise), e.g. ``calibration`` "cross_source" (thresholds
    from scores of models trained without each group of sources; needs >= 3 sources, else falls back),
    "holdout" (``val_fraction`` of the rows by id hash) or "none"; ``embed_weight`` (0 = no embedding layer);
    ``threads`` > 1 trains faster but not reproducibly. ``epoch`` overrides the prompt model's fastText epochs.
    Returns the model's metadata (training counts, calibration) as a dict.
    """
    from curate.taxonomy import Taxonomy

    settings = TrainConfig(**config)
    if epoch is not None:
        settings.prompt_params["epoch"] = epoch
    model = train_model(_read(in_path), Taxonomy.load(taxonomy), settings)
    model.save(out_dir)
    return model.meta


def evaluate(in_path: str | Path | list[str | Path], model_dir: str | Path | None = None,
             thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """Score a model (None = the shipped default) on labelled records.

    Returns ``{"all"|"zh"|"en": {"dimensions": {"per_label": {id: {precision, recall, f1, support}},
    "macro_f1", ...}, "binary": {precision, recall, f1, accuracy, rows, positives}}, "confusion": {lang: {true:
    {top prediction: [count, share]}}}, "kind": {...} | None, "rows": n}``. Macro-F1 averages the dimensions with
    at least 5 gold rows; binary is harmful vs safe over rows whose ``prompt_harmful`` is known.
    """
    model = ClassifierModel.load(model_dir) if model_dir is not None else load_model(None)
    df = _read(in_path)
    result = evaluate_frame(model, df, thresholds)
    result["kind"] = kind_report(model, df)
    return result


def format_report(result: dict[str, Any]) -> str:
    """A plain-text table of an ``evaluate`` result (what the CLI prints)."""
    lines = []
    for lang in ("all", "zh", "en"):
        part = result.get(lang)
        if not part:
            continue
        dims, binary = part["dimensions"], part["binary"]
        lines.append(f"== {lang}: macro-F1 {dims['macro_f1']} over {dims.get('macro_labels')} dimensions "
                     f"({dims['rows']} rows); harmful-vs-safe F1 {binary['f1']} "
                     f"(P {binary['precision']} R {binary['recall']}, {binary['rows']} rows)")
        for label, v in sorted(dims["per_label"].items()):
            lines.append(f"   {label}  P {v['precision']:.3f}  R {v['recall']:.3f}  F1 {v['f1']:.3f}  n={v['support']}")
    if result.get("confusion"):
        from curate.classify.confusion import format_matrix, from_dict, top_confusions

        table = from_dict(result["confusion"])
        for lang in ("zh", "en"):
            matrix = format_matrix(table, lang)
            if matrix:
                lines += ["", matrix]
        top = top_confusions(table.filter(pl.col("lang") != "all"), n=5)
        if top.height:
            lines.append("== top confusions (true -> top prediction, share of the true label's rows):")
            lines += [f"   {lang} {t} -> {p}: {s:.0%} of {n}" for lang, t, p, s, n
                      in top.select("lang", "true", "pred", "share", "rows").iter_rows()]
    if result.get("kind"):
        k = result["kind"]
        lines.append(f"== response kind: accuracy {k['accuracy']} macro-F1 {k['macro_f1']} ({k['rows']} rows)")
    return "\n".join(lines)
