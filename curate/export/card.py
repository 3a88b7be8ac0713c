"""The dataset card: YAML metadata for the hub, then what a reader needs to trust (or not) the data.

The text lives in ``curate/templates/card/dataset_card.md.j2`` (jinja2: the card has loops and conditional
sections, which ``string.Template`` cannot express; jinja2 is already installed with label-studio-sdk). This
module only shapes the run's ``RunSummary`` into the rows of the card's tables.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import jinja2
from huggingface_hub import DatasetCard, DatasetCardData

from curate.records import INELIGIBLE
from curate.licenses import is_non_commercial
from curate.summary import DatasetSummary, RunSummary
from curate.taxonomy import SAFE

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "card"
TEMPLATE = "dataset_card.md.j2"
SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))
FALLBACK_NAMES = {SAFE: ("safe (benign look-alike)", "无风险（良性相似问题）"), "general": ("general reasoning", "通用推理")}
KIND_TEXT = {
    "refusal": "harmful prompt -> reasoned refusal",
    "safe_completion": "harmful or borderline prompt -> safe completion",
    "helpful": "benign look-alike from a safety source -> helpful answer (against over-refusal)",
    "general": "general reasoning data, kept as is (capability)",
    "unlabelled": "not labelled harmful or benign (balance was not run)",
}
FORMAT_COLUMNS = {"messages": "`messages` (user and assistant turns)", "sharegpt": "`conversations` (human/gpt turns)",
                  "alpaca": "`instruction`, `input`, `output`"}


def size_category(n: int) -> str:
    return next((label for limit, label in SIZE_BUCKETS if n < limit), "n>100M")


def card_data(d: DatasetSummary, pretty_name: str, data_files: dict[str, str]) -> DatasetCardData:
    tags = ["safety", "reasoning", "chain-of-thought", "refusal", "not-for-all-audiences"]
    return DatasetCardData(
        license=d.licenses.license, language=sorted(d.languages),
        task_categories=["text-generation"], size_categories=[size_category(d.total)],
        pretty_name=pretty_name, tags=tags,
        configs=[{"config_name": "default",
                  "data_files": [{"split": split, "path": path} for split, path in data_files.items()]}])


def markdown_table(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["num"] = lambda v: f"{v:,}"
    env.filters["code"] = lambda v: f"`{v}`"
    env.filters["counts"] = lambda pairs: ", ".join(f"`{k}` ({v:,})" for k, v in pairs) or "none recorded"
    # an expression, not a for block: trim_blocks ate the newline after {% endfor %} and ran two lines together
    env.filters["reasons"] = lambda counts: ", ".join(f"`{k}`: {v:,}" for k, v in counts.items()) or "none dropped"
    env.globals.update(table=markdown_table, FORMAT_COLUMNS=FORMAT_COLUMNS, INELIGIBLE=INELIGIBLE)
    return env


def _dimension_rows(d: DatasetSummary, names: dict[str, tuple[str, str]], langs: list[str]) -> list[list[Any]]:
    rows = []
    for dim in sorted(set(d.dimensions) | set(names)):  # taxonomy dimensions with no rows show as 0: a gap
        counts = d.dimensions.get(dim, {})
        en, zh = names.get(dim) or FALLBACK_NAMES.get(dim, (dim, ""))
        rows.append([dim, en, zh] + [counts.get(lang, 0) for lang in langs] + [sum(counts.values())])
    return rows


def _unbalanced_language(d: DatasetSummary) -> tuple[str, int, int] | None:
    """(language, its rows, the largest language's rows) when one language has under half of the largest."""
    if len(d.languages) < 2:
        return None
    top = max(d.languages.values())
    low = min(d.languages, key=d.languages.get)
    return (low, d.languages[low], top) if d.languages[low] < top / 2 else None


def _embedded_model(d: DatasetSummary):
    """The embedded model's spec when it wrote some of the answers (the card then credits it and says what it is)."""
    from curate.llm.local.model import DEFAULT_MODEL

    return DEFAULT_MODEL if any(str(m).startswith(DEFAULT_MODEL.name) for m, _ in d.synthesis["models"]) else None


def render_card(run: RunSummary, *, pretty_name: str, data_files: dict[str, str], fmt: str, reasoning: str,
                names: dict[str, tuple[str, str]], plots: dict[str, str], description: str | None,
                has_recipe: bool) -> str:
    d = run.dataset
    if d is None:
        raise ValueError("a dataset card needs exported rows")
    langs = sorted(d.languages)
    text = _environment().get_template(TEMPLATE).render(
        run=run, d=d, metadata=card_data(d, pretty_name, data_files).to_yaml(), pretty_name=pretty_name,
        fmt=fmt, reasoning=reasoning, description=description, plots=plots, has_recipe=has_recipe,
        harm_dimensions=len([dim for dim in d.dimensions if dim.startswith("S") and dim != SAFE]),
        languages=langs, dimension_rows=_dimension_rows(d, names, langs),
        kind_rows=[[k, KIND_TEXT.get(k, k), n] for k, n in sorted(d.kinds.items())],
        ineligible=sorted((run.balance.get("ineligible") or {}).items()),
        stage_rows=[[s.stage, s.rows_in if s.rows_in is not None else "",
                     ", ".join(f"{k}: {v:,}" for k, v in sorted(s.new_drops.items())) or "-"] for s in run.stages],
        source_rows=[[src, s["exported"], s["collected"], f"`{s['license']}`" + (
            " (non-commercial)" if is_non_commercial(s["license"]) else ""), s["license_text"]]
            for src, s in d.sources.items()],
        shortfall_rows=[[r["kind"], r["dimension"], r["lang"], r["target"], r["achieved"], r["shortfall"]]
                        for r in run.balance.get("shortfalls") or []],
        unbalanced_language=_unbalanced_language(d), embedded_model=_embedded_model(d))
    return text


def build_card(run: RunSummary, **options: Any) -> DatasetCard:
    return DatasetCard(render_card(run, **options))
