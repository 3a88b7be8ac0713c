"""The collect stage: every raw row of every source becomes a record or a quarantined line with its file, line
and reason; labels are mapped to the taxonomy, text normalised, language detected."""
from __future__ import annotations

from typing import Any, Iterator

import polars as pl

from curate import records
from curate.collect.options import CollectOptions
from curate.collect.presets import Item
from curate.collect.readers import BadLine
from curate.collect.sources import SourceSpec, iter_items
from curate.collect.values import BadValue, id_value, label_values, lang_value, text_value
from curate.errors import UsageError
from curate.llm.reasoning import split_reasoning
from curate.stage import StageContext
from curate.text import detect_langs


class _SourceReader:
    """Turns one source's items into record dicts, quarantining what it cannot use."""

    def __init__(self, spec: SourceSpec, ctx: StageContext, options: CollectOptions, taxonomy):
        self.spec = spec
        self.ctx = ctx
        self.options = options
        self.name = spec.source_name
        label_set = spec.label_set_name
        self.mapping = taxonomy.mapping(label_set) if label_set else None
        self.seen: set[str] = set()
        self.unknown: dict[str, int] = {}
        self.counts = {"rows": 0, "quarantined": 0}

    def quarantine(self, location: str, reason: str, raw: str | None = None) -> None:
        self.counts["quarantined"] += 1
        self.ctx.quarantine(source=self.name, location=location, reason=reason, raw=raw)

    def record(self, location: str, item: Item, encoding: str) -> dict[str, Any] | None:
        try:
            return self._record(location, item, encoding)
        except BadValue as exc:
            self.quarantine(location, str(exc), _preview(item))
            return None

    def _record(self, location: str, item: Item, encoding: str) -> dict[str, Any] | None:
        prompt = text_value(item.prompt, "prompt")
        if not prompt or len(prompt) < self.options.min_prompt_chars:
            self.quarantine(location, "empty prompt", repr(item.prompt)[:300])
            return None
        source_id = id_value(item.source_id)
        reasoning = text_value(item.extra.pop("reasoning", None), "reasoning")
        answer = text_value(item.response, "response")
        lang = lang_value(item.lang) if item.lang else None  # None: detected with its batch (run's _flush)
        labels = label_values(item.labels, "labels")
        if source_id in self.seen:
            self.quarantine(location, f"duplicate source id {source_id!r} within source {self.name}")
            return None
        self.seen.add(source_id)
        think, response = split_reasoning(answer) if answer is not None else (None, None)
        reasoning, response = reasoning or think, response or None
        categories: list[str] = []
        harmful = self.spec.harmful
        attack = item.attack
        origin = None
        meta: dict[str, Any] = {"role": self.spec.role_name, "location": location}
        if encoding and encoding != "utf-8":
            meta["encoding"] = encoding
        if item.extra:
            meta.update({k: v for k, v in item.extra.items() if v is not None})
        if self.mapping is not None and labels:
            mapped = self.mapping.map(labels, prompt)
            categories = list(mapped.categories)
            harmful = mapped.prompt_harmful if mapped.prompt_harmful is not None else harmful
            attack = attack or mapped.attack
            origin = "source"
            if mapped.unknown:
                meta["unknown_labels"] = list(mapped.unknown)
                for label in mapped.unknown:
                    self.unknown[label] = self.unknown.get(label, 0) + 1
        if self.spec.role_name == "general" and harmful is None:
            harmful = False
        return {
            "id": records.make_id(self.name, source_id), "source": self.name, "source_id": source_id,
            "source_license": self.spec.license_name, "lang": lang, "prompt": prompt, "response": response,
            "reasoning": reasoning, "source_labels": labels, "categories": categories,
            "label_origin": origin, "prompt_harmful": harmful, "response_kind": item.response_kind,
            "attack": attack, "role": self.spec.role_name,
            "answer_origin": "source" if response and response.strip() else None,
            "prompt_template": _text(item.extra.get("template")),
            "meta": records.dump_meta({"collect": meta}),
        }


def check_unique_names(options: CollectOptions) -> None:
    names = [s.source_name for s in options.sources]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise UsageError(f"collect: source name {sorted(duplicates)[0]!r} is used twice; give each source a unique 'name'")


# Rows whose language is detected together (detect_langs is several times faster on a batch than row by row).
# Reading stops exactly where it did row by row: a batch never reads past a source's limit, and a source with
# both a language filter and a limit goes row by row (where it stops depends on each row's language).
LANG_BATCH = 4096


def run(df: pl.DataFrame, options: CollectOptions, ctx: StageContext) -> pl.DataFrame:
    frames = list(batches(options, ctx))  # a frame per batch: a million row dicts held at once cost gigabytes
    return records.conform(pl.concat(frames, how="diagonal")) if frames else records.empty()


def batches(options: CollectOptions, ctx: StageContext) -> Iterator[pl.DataFrame]:
    """The records of every source, a frame of up to LANG_BATCH rows at a time, in source and reading order."""
    from curate.taxonomy import Taxonomy

    taxonomy = Taxonomy.load(ctx.taxonomy_path)
    per_source: dict[str, Any] = {}
    check_unique_names(options)
    for spec in options.sources:
        reader = _SourceReader(spec, ctx, options, taxonomy)
        batch = 1 if spec.limit and spec.languages else LANG_BATCH
        pending: list[dict[str, Any]] = []
        kept = 0
        with ctx.progress(None, f"collect {reader.name}") as bar:
            for location, item, encoding in iter_items(spec):
                if isinstance(item, BadLine):
                    reader.quarantine(item.location, item.reason, item.raw)
                    continue
                row = reader.record(location, item, encoding)
                if row is None:
                    continue
                pending.append(row)
                if len(pending) >= batch or (spec.limit and kept + len(pending) >= spec.limit):
                    frame, kept = _flush(pending, spec, kept, reader, bar)
                    yield frame
                    if spec.limit and kept >= spec.limit:
                        break
            if pending:
                frame, kept = _flush(pending, spec, kept, reader, bar)
                yield frame
        per_source[reader.name] = {**reader.counts, "license": spec.license_name, "role": spec.role_name,
                                   "unknown_labels": reader.unknown}
        ctx.log(f"[collect] {reader.name}: {reader.counts['rows']:,} rows, {reader.counts['quarantined']:,} quarantined"
                + (f", unknown labels: {', '.join(sorted(reader.unknown))}" if reader.unknown else ""))
    ctx.stats["sources"] = per_source


def _flush(pending: list[dict[str, Any]], spec: SourceSpec, kept: int, reader: _SourceReader,
           bar) -> tuple[pl.DataFrame, int]:
    """Detect the language of the pending rows that have none and apply the source's language filter: the rows as
    one frame, and the count of rows the filter kept so far. Empties ``pending``."""
    todo = [row for row in pending if row["lang"] is None]
    for row, lang in zip(todo, detect_langs([row["prompt"] for row in todo])):
        row["lang"] = lang
    for row in pending:
        if spec.languages and row["lang"] not in spec.languages:
            row["drop_reason"] = "language_filtered"
        else:
            kept += 1
    frame = pl.DataFrame(pending, schema={k: records.SCHEMA[k] for k in pending[0]} | {"drop_reason": pl.Utf8},
                         strict=False)
    reader.counts["rows"] += len(pending)
    bar.advance(len(pending))
    pending.clear()
    return frame, kept


def _text(value: Any) -> str | None:
    """A template name the source gives (a string or a number), else None."""
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else None


def _preview(item: Item) -> str:
    return repr({"id": item.source_id, "prompt": item.prompt, "lang": item.lang, "labels": item.labels})[:300]
