"""Build the report's sections once, then render them as self-contained HTML and as Markdown."""
from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from curate.eval import view as eval_view
from curate.report import plots
from curate.report.data import RunData

SAMPLES_PER_DIMENSION = 3
CONTENT_WARNING = ("Content warning: the sample rows below are safety data and contain harmful, offensive or "
                   "disturbing text by design.")


@dataclass
class Section:
    key: str
    title: str
    text: str = ""
    table: tuple[list[str], list[list[Any]]] | None = None
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, PNG)
    samples: list[tuple[str, list[dict[str, str]]]] = field(default_factory=list)  # (dimension, rows)


NO_ROWS = "No records: the sources yielded no rows (see the quarantined lines in the funnel)."


def build_sections(data: RunData) -> list[Section]:
    final, summary = data.final, data.summary
    fun = summary.funnel
    kept = final.filter(pl.col("drop_reason").is_null())
    sections: list[Section] = []

    stage_rows = [[s.stage, f"{s.rows_in:,}", f"{s.rows_out:,}",
                   ", ".join(f"{k}: {v:,}" for k, v in sorted(s.new_drops.items())) or "-",
                   f"{s.quarantined:,}", f"{s.seconds:.1f}"] for s in summary.stages]
    sections.append(Section(
        "funnel", "Funnel per stage",
        text=f"{fun.collected:,} records collected, {fun.quarantined:,} input lines quarantined; "
             f"{fun.kept:,} exportable, {fun.pending:,} pending (no answer yet), "
             f"{sum(fun.dropped.values()):,} dropped. " + ("Totals add up." if fun.balanced else "TOTALS DO NOT ADD UP."),
        table=(["stage", "rows in", "rows out", "new drops", "quarantined lines", "seconds"], stage_rows),
        images=[("funnel.png", plots.funnel_plot(fun))]))

    # A run whose sources yielded no rows still gets its report (the funnel says where the lines went).
    sections.append(Section("dimensions", "Harm dimensions by language (kept records)",
                             text="Records with no harm dimension count as S00 (safe)." if final.height else NO_ROWS,
                             images=[("dimensions_by_language.png",
                                      plots.heatmap(kept if kept.height else final, "Dimension x language"))]
                             if final.height else []))

    if data.before_balance is not None:
        before = data.before_balance.filter(pl.col("drop_reason").is_null())
        shortfall = summary.balance.get("shortfall") or []
        sec = Section("balance", "Before and after balancing",
                      text=f"{before.height:,} records before balancing, {kept.height:,} after.",
                      images=[("balance_before_after.png", plots.before_after(before, kept))]
                      if before.height else [])
        if shortfall:
            keys = list(shortfall[0].keys())
            sec.table = (keys, [[row.get(k) for k in keys] for row in shortfall])
        sections.append(sec)
    else:
        sections.append(Section("balance", "Before and after balancing", text="The balance stage did not run."))

    sections.append(Section("lengths", "Prompt and answer lengths", text="" if final.height else NO_ROWS,
                            images=[("lengths.png", plots.lengths(final))] if final.height else []))

    sections.append(Section(
        "duplicates", "Near-duplicate clusters",
        text=(f"{summary.duplicates:,} duplicates in {summary.duplicate_clusters:,} clusters."
              if summary.duplicate_clusters else "The dedup stage did not run."),
        images=[("duplicate_clusters.png", plots.cluster_sizes(final))] if summary.duplicate_clusters else []))

    scored = final.filter(pl.col("category_scores").is_not_null())
    origin = summary.label_origins
    sections.append(Section(
        "classifier", "Classifier confidence",
        text=f"Label origin: {', '.join(f'{k}: {v:,}' for k, v in sorted(origin.items(), key=str))}." +
             ("" if scored.height else " No classifier scores in this run."),
        images=[("classifier_confidence.png", plots.confidence(final))] if scored.height else []))

    synth = summary.stats("synthesize")
    statuses = summary.synthesis_statuses
    sections.append(Section(
        "synthesis", "Synthesis outcomes and costs",
        text="The synthesize stage did not run." if synth is None else
             ("; ".join(f"{k}: {v}" for k, v in sorted(synth.items()) if not isinstance(v, (dict, list))) or
              "No synthesis figures recorded."),
        table=(["status", "records"], [[k, f"{v:,}"] for k, v in sorted(statuses.items())]) if statuses else None,
        images=[("synthesis_outcomes.png", plots.bars(statuses, "Synthesis outcome per record"))] if statuses else []))

    review = summary.stats("review")
    sections.append(Section(
        "review", "Review progress and agreement",
        text="The review stage did not run." if review is None else
             json.dumps(review, ensure_ascii=False, indent=1, default=str)[:4000]))

    for name, result in data.evals:
        chart = eval_view.dimension_chart(result)
        sections.append(Section(f"eval-{name}", f"Evaluation {name}: {result.get('model')}",
                                text=eval_view.caption(result), table=eval_view.metrics_table(result),
                                images=[(f"eval-{name}.png", chart)] if chart else []))

    samples = []
    exploded = plots.explode_categories(kept if kept.height else final)
    for dim in sorted(exploded["dim"].unique().to_list()):
        rows = exploded.filter(pl.col("dim") == dim).sort("id").head(SAMPLES_PER_DIMENSION)
        samples.append((dim, [{"source": r["source"], "lang": r["lang"], "prompt": r["prompt"] or "",
                               "reasoning": r["reasoning"] or "", "response": r["response"] or ""}
                              for r in rows.iter_rows(named=True)]))
    sections.append(Section("samples", "Sample rows per dimension", text=CONTENT_WARNING, samples=samples))
    return sections


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
img{max-width:100%;display:block;margin:1em 0}.warn{background:#fff3cd;border:1px solid #e0c36a;padding:.6em}
details{margin:.3em 0 .3em 1em}summary{cursor:pointer}pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}
nav a{margin-right:1em}
"""


def to_html(sections: list[Section], title: str) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1><nav>"]
    parts += [f"<a href='#{s.key}'>{esc(s.title)}</a>" for s in sections]
    parts.append("</nav>")
    for s in sections:
        parts.append(f"<section id='{s.key}'><h2>{esc(s.title)}</h2>")
        if s.text:
            cls = " class='warn'" if s.key == "samples" else ""
            parts.append(f"<p{cls}>{esc(s.text)}</p>" if "\n" not in s.text else f"<pre>{esc(s.text)}</pre>")
        if s.table:
            head, rows = s.table
            parts.append("<table><tr>" + "".join(f"<th>{esc(str(h))}</th>" for h in head) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</table>")
        for name, png in s.images:
            data = base64.b64encode(png).decode()
            parts.append(f"<img alt='{esc(name)}' src='data:image/png;base64,{data}'>")
        for dim, rows in s.samples:
            parts.append(f"<details><summary>{esc(dim)} ({len(rows)} rows)</summary>")
            for r in rows:
                parts.append(f"<details><summary>[{esc(r['lang'])}] {esc(r['source'])}: {esc(r['prompt'][:80])}</summary>"
                             f"<pre>{esc(r['prompt'])}</pre>" +
                             (f"<p>reasoning</p><pre>{esc(r['reasoning'])}</pre>" if r["reasoning"] else "") +
                             (f"<p>answer</p><pre>{esc(r['response'])}</pre>" if r["response"] else "") + "</details>")
            parts.append("</details>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def to_markdown(sections: list[Section], title: str, image_dir: str) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        if s.text:
            lines += [("> " if s.key == "samples" else "") + s.text.replace("\n", " "), ""]
        if s.table:
            head, rows = s.table
            lines.append("| " + " | ".join(map(str, head)) + " |")
            lines.append("|" + "---|" * len(head))
            lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
            lines.append("")
        lines += [f"![{name}]({image_dir}/{name})" for name, _ in s.images]
        for dim, rows in s.samples:
            lines.append(f"<details><summary>{dim} ({len(rows)} rows)</summary>\n")
            for r in rows:
                lines.append(f"- [{r['lang']}] {r['source']}: {html.escape(r['prompt'][:300])}")
            lines.append("\n</details>")
        lines.append("")
    return "\n".join(lines)
