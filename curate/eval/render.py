"""Terminal tables for an eval summary and a comparison (rich)."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from curate.eval.summary import METRICS
from curate.eval.view import dimension_cells, fmt_rate


def print_summary(summary: dict, console: Console | None = None) -> None:
    console = console or Console(stderr=True)
    table = Table(title=f"eval: {summary.get('model')} on {summary.get('suite')} "
                        f"(system prompt: {summary.get('system_prompt', {}).get('kind')})")
    table.add_column("metric")
    table.add_column("rate [95% CI] n")
    for metric in METRICS:
        table.add_row(metric, fmt_rate(summary.get(metric), with_n=True))
    console.print(table)
    dims = Table(title="per dimension and language (jailbreak: all attacks together)")
    for col in ("metric", "dimension", "lang", "rate [95% CI] n"):
        dims.add_column(col)
    for metric in METRICS:
        for cell in dimension_cells(summary, metric):
            dims.add_row(metric, cell["dimension"], cell["lang"], fmt_rate(cell, with_n=True))
    console.print(dims)
    acc = summary["accounting"]
    console.print(f"items {acc['items']}: scored {acc['scored']}, failed {acc['failed']}, pending {acc['pending']}; "
                  f"in training corpus {acc['in_train']}; records without a harmful/safe label {acc['unlabelled_records']}")


def print_comparison(result: dict, console: Console | None = None) -> None:
    console = console or Console(stderr=True)
    table = Table(title=f"B - A   (A: {result['a']['dir']}, B: {result['b']['dir']}); * = significant "
                        f"(McNemar p < {result['alpha']}; lower over-refusal is better)")
    for col in ("metric", "dimension", "lang", "attack", "A", "B", "B - A [95% CI]", "shared", "p", ""):
        table.add_column(col)
    rows = [{**r, "dimension": "all", "lang": "all", "attack": "all"} for r in result["overall"].values()]
    # the terminal shows roll-ups (per dimension, per language); every cell is in the JSON (--out)
    for r in rows + [r for r in result["cells"] if r["dimension"] == "all" or r["lang"] == "all"]:
        p = "-" if r["p_value"] is None else f"{r['p_value']:.3f}"
        mark = ("* better" if r["better"] else "* worse") if r["significant"] else ""
        table.add_row(r["metric"], r["dimension"], r["lang"], r["attack"], f"{r['a']:.1%}", f"{r['b']:.1%}",
                      f"{r['difference']:+.1%} [{r['low']:+.1%}, {r['high']:+.1%}]" + (" small n" if r["small"] else ""),
                      str(r["shared"]), p, mark)
    console.print(table)
    for metric, pair in result.get("lengths", {}).items():
        console.print(f"{metric}: answer chars (mean) A {pair['a']['answer_chars_mean']} -> B {pair['b']['answer_chars_mean']}, "
                      f"reasoning chars (mean) A {pair['a']['reasoning_chars_mean']} -> B {pair['b']['reasoning_chars_mean']}")
