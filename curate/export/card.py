"""The dataset card: YAML metadata for the hub, then what a reader needs to trust (or not) the data."""
from __future__ import annotations

from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from curate.export.licenses import is_non_commercial
from curate.export.summary import Summary
from curate.llm.local.model import DEFAULT_MODEL as EMBEDDED_MODEL

SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))
FALLBACK_NAMES = {"S00": ("safe (benign look-alike)", "无风险（良性相似问题）"), "general": ("general reasoning", "通用推理")}
KIND_TEXT = {
    "refusal": "harmful prompt -> reasoned refusal",
    "safe_completion": "harmful or borderline prompt -> safe completion",
    "helpful": "benign look-alike from a safety source -> helpful answer (against over-refusal)",
    "general": "general reasoning data, kept as is (capability)",
    "unlabelled": "not labelled harmful or benign (balance was not run)",
}


def size_category(n: int) -> str:
    return next((label for limit, label in SIZE_BUCKETS if n < limit), "n>100M")


def card_data(summary: Summary, pretty_name: str, data_files: dict[str, str]) -> DatasetCardData:
    tags = ["safety", "reasoning", "chain-of-thought", "refusal", "not-for-all-audiences"]
    return DatasetCardData(
        license=summary.licenses.license, language=sorted(summary.languages),
        task_categories=["text-generation"], size_categories=[size_category(summary.exported)],
        pretty_name=pretty_name, tags=tags,
        configs=[{"config_name": "default",
                  "data_files": [{"split": split, "path": path} for split, path in data_files.items()]}])


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def build_card(summary: Summary, *, pretty_name: str, data_files: dict[str, str], fmt: str, reasoning: str,
               names: dict[str, tuple[str, str]], plots: dict[str, str], description: str | None,
               has_recipe: bool) -> DatasetCard:
    data = card_data(summary, pretty_name, data_files)
    body = "\n\n".join(part for part in (
        f"# {pretty_name}",
        CONTENT_WARNING,
        _description(summary, fmt, reasoning, description),
        _license_section(summary),
        _taxonomy_section(summary, names),
        _kinds_section(summary),
        _funnel_section(summary),
        _sources_section(summary),
        _synthesis_section(summary),
        _review_section(summary),
        _balance_section(summary),
        _plots_section(plots),
        _limitations(summary),
        _reproduce(has_recipe),
    ) if part)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")


CONTENT_WARNING = ("> **Content warning.** The prompts in this dataset include harmful, offensive and disturbing "
                   "requests (violence, self-harm, hate, sexual content, crime) by design: they teach a model to "
                   "refuse or answer safely. Do not use them for anything else.")


def _description(s: Summary, fmt: str, reasoning: str, extra: str | None) -> str:
    columns = {"messages": "`messages` (user and assistant turns)", "sharegpt": "`conversations` (human/gpt turns)",
               "alpaca": "`instruction`, `input`, `output`"}[fmt]
    think = ("the assistant turn starts with the chain of thought inside `<think>...</think>` (R1 style), then "
             "the answer" if reasoning == "inline" else "the chain of thought is in the separate `reasoning` field")
    text = (f"A bilingual safety training set for reasoning models, built with "
            f"curate: prompts across {len([d for d in s.dimensions if d.startswith('S') and d != 'S00'])} "
            f"harm dimensions answered with reasoned refusals, safe completions and helpful answers to "
            f"benign look-alikes, mixed with general reasoning data.\n\n"
            f"Format `{fmt}`: {columns}; {think}. Every row also has `id`, `lang`, `kind`, `categories` "
            f"(taxonomy ids), `source` and `source_license`.\n\n"
            + _table(["split", "rows"], [[k, v] for k, v in s.splits.items()] + [["**total**", s.exported]]))
    return text + (f"\n\n{extra}" if extra else "")


def _license_section(s: Summary) -> str:
    lic = s.licenses
    lines = ["## License",
             f"The card license is `{lic.license}`: the most restrictive license among the sources of the exported rows "
             "(each row keeps its own in `source_license`)."]
    if lic.non_commercial:
        lines.append("**Non-commercial:** rows from " + ", ".join(f"`{x}`" for x in lic.non_commercial) +
                     " carry a non-commercial license, so the dataset as a whole may not be used commercially. "
                     "Filter on `source_license` to build a commercial subset.")
    if lic.unknown:
        lines.append("**Unknown license:** " + ", ".join(f"`{x}`" for x in lic.unknown) +
                     " gave no recognised license; treat those rows as all rights reserved until checked.")
    return "\n\n".join(lines)


def _taxonomy_section(s: Summary, names: dict[str, tuple[str, str]]) -> str:
    langs = sorted(s.languages)
    rows = []
    for dim in sorted(set(s.dimensions) | set(names)):  # taxonomy dimensions with no rows show as 0: a gap
        counts = s.dimensions.get(dim, {})
        en, zh = names.get(dim) or FALLBACK_NAMES.get(dim, (dim, ""))
        rows.append([dim, en, zh] + [counts.get(l, 0) for l in langs] + [sum(counts.values())])
    return ("## Taxonomy: rows per dimension and language\n\nA row with several dimensions counts once in each; "
            "`S00` = a safety-source prompt with no harm dimension (benign look-alike); `general` = general "
            "reasoning data.\n\n" + _table(["id", "dimension", "维度"] + langs + ["total"], rows))


def _kinds_section(s: Summary) -> str:
    rows = [[k, KIND_TEXT.get(k, k), n] for k, n in sorted(s.kinds.items())]
    langs = [[lang, n] for lang, n in sorted(s.languages.items())]
    return ("## Kinds and languages\n\n" + _table(["kind", "meaning", "rows"], rows) + "\n\n"
            + _table(["language", "rows"], langs))


def _funnel_section(s: Summary) -> str:
    f = s.funnel
    rows = [[name, n] for name, n in f.rows()]
    text = ("## Funnel: from collected to exported\n\nEvery collected record is accounted for; a dropped row "
            "keeps its first drop reason.\n\n" + _table(["where", "rows"], rows))
    text += f"\n\nExported: **{s.exported:,}** rows. Input lines quarantined (unparseable): {f.quarantined:,}."
    ineligible = (s.balance or {}).get("ineligible") or {}
    if ineligible:
        from curate.balance.stage import INELIGIBLE

        text += " Balance could not use: " + ", ".join(
            f"{n:,} `{reason}` ({INELIGIBLE.get(reason, reason)})" for reason, n in sorted(ineligible.items())) + "."
    if f.pending:
        text += (f" **{f.pending:,}** kept rows had no response yet (synthesis pending) and are not in the "
                 "dataset.")
    if s.stages:
        stage_rows = [[m["stage"], m["rows_in"] if m["rows_in"] is not None else "", ", ".join(
            f"{k}: {v:,}" for k, v in sorted(m["new_drops"].items())) or "-"] for m in s.stages]
        text += "\n\nPer stage (from the run's manifests):\n\n" + _table(["stage", "rows in", "dropped here"], stage_rows)
    return text


def _sources_section(s: Summary) -> str:
    rows = [[src, d["exported"], d["collected"], f"`{d['license']}`" + (" (non-commercial)" if is_non_commercial(
        d["license"]) else ""), d["license_text"]] for src, d in s.sources.items()]
    return "## Sources\n\n" + _table(["source", "rows exported", "rows collected", "license", "as given"], rows)


def _counter_text(counter) -> str:
    return ", ".join(f"`{k}` ({v:,})" for k, v in counter.most_common()) or "none recorded"


def _synthesis_section(s: Summary) -> str:
    y = s.synthesis
    lines = ["## How the answers were written",
             f"{y['synthesized']:,} answers were synthesized by a model; {y['from_source']:,} come from the sources "
             "as they were.",
             f"- models: {_counter_text(y['models'])}",
             f"- prompt templates (versioned): {_counter_text(y['templates'])}"]
    if y["judged"]:
        lines.append(f"- LLM judge: {y['judged']:,} answers scored, mean score {y['judge_score_mean']} (1-10)")
    filters = ", ".join(f"`{k}`: {v:,}" for k, v in sorted(y["filters"].items()))
    lines.append(f"- filters (answers dropped): {filters or 'none dropped'}")
    sample = y.get("sample") or {}
    if sample.get("left_pending"):
        lines.append(f"- sample: {sample['size']:,} of {sample['planned']:,} prompts that needed an answer were sent "
                     f"(stratified by language, goal and dimension); {sample['left_pending']:,} stay pending")
    if any(str(m).startswith(EMBEDDED_MODEL.name) for m in y["models"]):
        lines.append(f"- the embedded model is {EMBEDDED_MODEL.upstream} ({EMBEDDED_MODEL.license}), a small "
                     "model for offline runs and trials: check its answers before training on them")
    return "\n\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:])


def _review_section(s: Summary) -> str:
    r = s.review
    share = f"{r['reviewed'] / r['total']:.1%}" if r["total"] else "0%"
    lines = ["## Human review", f"{r['reviewed']:,} of {r['total']:,} exported rows ({share}) were reviewed by a person."]
    if r["agreement_mean"] is not None:
        lines.append(f"Mean reviewer agreement: {r['agreement_mean']}.")
    if r["agreed_share"] is not None:
        lines.append(f"Reviewers agreed with the automatic label on {r['agreed_share']:.1%} of reviewed rows.")
    for key, value in r["stage_agreement"].items():
        lines.append(f"{key}: {value}")
    if r["reviewed"] == 0:
        lines.append("No agreement figures: nothing was reviewed.")
    return "\n\n".join(lines)


def _balance_section(s: Summary) -> str:
    b = s.balance
    if not b:
        return ""
    text = (f"## Balancing\n\n{b.get('selected', 0):,} rows selected of a {b.get('target_total', 0):,}-row target "
            f"(seed {b.get('seed')}).")
    shortfalls = b.get("shortfalls") or []
    if shortfalls:
        text += " Targets not met (rows still needed):\n\n" + _table(
            ["kind", "dimension", "lang", "target", "achieved", "needs"],
            [[r["kind"], r["dimension"], r["lang"], r["target"], r["achieved"], r["shortfall"]] for r in shortfalls])
    return text


def _plots_section(plots: dict[str, str]) -> str:
    if not plots:
        return ""
    return "## Plots\n\n" + "\n\n".join(f"![{title}]({path})" for title, path in plots.items())


def _limitations(s: Summary) -> str:
    items = [
        "Labels come from source datasets, a classifier and an LLM judge; only the reviewed share above was "
        "checked by people. Expect label noise, especially on borderline prompts.",
        "Synthesized answers reflect the writer model's views and the refusal policy in the templates; they are "
        "not legal, medical or safety advice.",
        "Harm is culture- and law-dependent; the taxonomy follows Chinese and international references and will "
        "not fit every jurisdiction.",
    ]
    if len(s.languages) > 1:
        top = max(s.languages.values())
        low = min(s.languages, key=s.languages.get)
        if s.languages[low] < top / 2:
            items.append(f"Languages are unbalanced: `{low}` has {s.languages[low]:,} rows against {top:,}.")
    short = s.balance.get("shortfall_total") if s.balance else None
    if short:
        items.append(f"Balancing targets were missed by {short:,} rows (see Balancing): thin dimensions are "
                     "under-represented.")
    if s.funnel.pending:
        items.append(f"{s.funnel.pending:,} selected prompts still await a synthesized answer and are missing.")
    return "## Limitations\n\n" + "\n".join(f"- {i}" for i in items)


def _reproduce(has_recipe: bool) -> str:
    if not has_recipe:
        return ""
    return ("## Reproduce\n\n`recipe.yaml` in this folder is the pipeline configuration that built the dataset "
            "(secrets redacted): `curate run recipe.yaml`.")
