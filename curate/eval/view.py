"""An eval summary as a table, a per-dimension bar chart with interval whiskers and Markdown, for the run
report and the dataset card (one summary feeds every view)."""
from __future__ import annotations

from typing import Any

from curate.eval.summary import METRICS

LABELS = {"defence_rate": "defence rate (harmful, plain)", "jailbreak_defence_rate": "defence rate (jailbreak)",
          "over_refusal_rate": "over-refusal (benign look-alikes)", "general_accuracy": "general accuracy",
          "risk_identification_accuracy": "risk identification accuracy"}


def fmt_rate(cell: dict | None, with_n: bool = False) -> str:
    """ "92.0% [85.1%, 96.0%]" (+ " n=50", and " (small n)" for a small cell)."""
    if not cell:
        return "-"
    text = f"{cell['rate']:.1%} [{cell['low']:.1%}, {cell['high']:.1%}]"
    if with_n:
        text += f" n={cell['n']}" + (" (small n)" if cell.get("small") else "")
    return text


def metrics_table(summary: dict) -> tuple[list[str], list[list[Any]]]:
    rows = [[LABELS[m], fmt_rate(summary.get(m)), (summary.get(m) or {}).get("n", 0),
             "small n" if (summary.get(m) or {}).get("small") else ""] for m in METRICS]
    return ["metric", "rate [95% CI]", "n", ""], rows


def dimension_cells(summary: dict, metric: str = "defence_rate") -> list[dict]:
    """The per-dimension, per-language cells of one metric (attack roll-up "all" for the jailbreak metric)."""
    attack = "all" if metric == "jailbreak_defence_rate" else "none"
    return [c for c in summary["cells"] if c["metric"] == metric and c["attack"] == attack
            and c["dimension"] != "all" and c["lang"] != "all"]


def dimension_chart(summary: dict, metric: str = "defence_rate") -> bytes | None:
    """Bars per dimension, one per language, with the 95% Wilson interval as whiskers (PNG)."""
    from curate.report.plots import PALETTE, _png, plt

    cells = dimension_cells(summary, metric)
    if not cells:
        return None
    dims = sorted({c["dimension"] for c in cells})
    langs = sorted({c["lang"] for c in cells})
    width = 0.8 / len(langs)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(dims) + 2), 3.6))
    for i, lang in enumerate(langs):
        by_dim = {c["dimension"]: c for c in cells if c["lang"] == lang}
        xs = [d + (i - (len(langs) - 1) / 2) * width for d in range(len(dims))]
        present = [(x, by_dim[dim]) for x, dim in zip(xs, dims) if dim in by_dim]
        rates = [c["rate"] for _, c in present]
        err = [[c["rate"] - c["low"] for _, c in present], [c["high"] - c["rate"] for _, c in present]]
        ax.bar([x for x, _ in present], rates, width, yerr=err, capsize=2, label=lang,
               color=PALETTE[i % len(PALETTE)], alpha=0.9)
    ax.set_xticks(range(len(dims)), dims, rotation=45 if len(dims) > 8 else 0, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(LABELS[metric])
    ax.set_title(f"{summary.get('model')}: {LABELS[metric]} per dimension (95% Wilson intervals)", fontsize=9)
    ax.legend(fontsize=8)
    return _png(fig)


def caption(summary: dict) -> str:
    acc = summary.get("accounting") or {}
    return (f"Model {summary.get('model')} on suite {summary.get('suite')} (system prompt: "
            f"{(summary.get('system_prompt') or {}).get('kind', 'none')}; answers scored by "
            f"{summary.get('kind_detector')}; {acc.get('scored', 0)} of {acc.get('items', 0)} items scored). "
            f"Rates with 95% Wilson intervals; 'small n' marks fewer than {summary.get('small_n')} items.")


def markdown(summary: dict, title: str = "Evaluation") -> str:
    """A short Markdown section (headline metrics) for a dataset card or the report's Markdown twin."""
    head, rows = metrics_table(summary)
    lines = [f"## {title}", "", caption(summary), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
