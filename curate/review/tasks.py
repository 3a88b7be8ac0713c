"""Records to Label Studio tasks (data + pre-annotations) and annotation results back to plain values.

The task's ``data.record_id`` is the link back to the corpus: push uses it to skip records already in the
project, pull uses it to find the row an annotation belongs to. The HTML fields (``context_html``,
``reasoning_html``, ``response_html``) are rendered and sanitised here, at push time, so Label Studio only
displays them.
"""
from __future__ import annotations

from typing import Any

from curate.review import label_config as lc
from curate.review.render import escape, markdown_html
from curate.review.sampling import scores
from curate.taxonomy import SAFE, Taxonomy

TOP_DIMENSIONS = 3  # how many of the classifier's dimension scores the context header lists
_ORIGIN_TEXT = {"source": "the source dataset", "classifier": "the classifier", "judge": "the LLM judge",
                "human": "a reviewer"}


def model_version(rows: list[dict[str, Any]]) -> str:
    """One version string for a push's pre-annotations (Label Studio shows one model version at a time): whether
    classify labelled the rows (its facts are set) and which model wrote their answers (``answer_model``)."""
    classified = any(row.get("category_disagreement") is not None for row in rows)
    synth = next((row["answer_model"] for row in rows if row.get("answer_model")), None)
    parts = ["classify" if classified else "labels:source"]
    if synth:
        parts.append(f"synthesize:{synth}")
    return " + ".join(str(p) for p in parts)[:200]


def _choices(name: str, to: str, values: list[str]) -> dict[str, Any]:
    return {"from_name": name, "to_name": to, "type": "choices", "value": {"choices": values}}


def shape(row: dict[str, Any]) -> str:
    """``answer`` when the record has an answer to judge, else ``prompt`` (most records before synthesis)."""
    return "answer" if (row.get("response") or "").strip() else "prompt"


def harmful_score(s: dict[str, float]) -> float | None:
    """The classifier's p(harmful): 1 - the S00 (safe) score, which is how classify writes it."""
    return None if SAFE not in s else 1.0 - s[SAFE]


def context_html(row: dict[str, Any], stratum: str, taxonomy: Taxonomy) -> str:
    """The labelled header above the prompt: where the record and its labels come from, what the classifier said."""
    s = scores(row.get("category_scores"))
    known = set(taxonomy.harm_ids)
    top = sorted(((k, v) for k, v in s.items() if k in known), key=lambda kv: -kv[1])[:TOP_DIMENSIONS]
    harm = harmful_score(s)
    origin = row.get("label_origin") or "source"
    lines = [
        ("Source / 来源", row.get("source") or "?"),
        ("Language / 语言", row.get("lang") or "?"),
        ("Pre-selected labels from / 预选标签来自", _ORIGIN_TEXT.get(origin, origin)),
        ("Classifier: harmful / 分类器：有害概率", "not scored" if harm is None else f"{harm:.2f}"),
        ("Classifier: top dimensions / 分类器：主要类别",
         ", ".join(f"{k} {taxonomy.get(k).name_en} {v:.2f}" for k, v in top) or "not scored"),
    ]
    if shape(row) == "answer":
        lines.append(("Answer kind / 回答类型", row.get("response_kind") or "not classified"))
    lines.append(("Sample group / 抽样分组", stratum))
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in lines)
    warning = ("Content warning: the prompt may be disturbing; it scrolls inside its box. / "
               "内容提示：提示词可能令人不适，内容在框内滚动显示。")
    return f'<table>{body}</table><div class="curate-warning">{escape(warning)}</div>'


def task(row: dict[str, Any], stratum: str, priority: float | None, version: str,
         taxonomy: Taxonomy | None = None) -> dict[str, Any]:
    """A Label Studio task with the record's labels (and answer) as a pre-annotation."""
    taxonomy = taxonomy or Taxonomy.load()
    s = scores(row.get("category_scores"))
    kind = shape(row)
    data = {
        "record_id": row["id"], "prompt": row.get("prompt") or "", "reasoning": row.get("reasoning") or "",
        "response": row.get("response") or "", "lang": row.get("lang") or "", "source": row.get("source") or "",
        "stratum": stratum, "priority": priority, "shape": kind,
        "context_html": context_html(row, stratum, taxonomy),
        "reasoning_html": markdown_html(row.get("reasoning")) or "<p><em>(no reasoning / 无推理过程)</em></p>",
        "response_html": markdown_html(row.get("response")),
    }
    result = [_choices(lc.SHAPE, "prompt", [kind])]
    harmful = row.get("prompt_harmful")
    if harmful is None and row.get("categories"):
        harmful = True  # a dimension means harmful in the schema; the dimensions show only under "yes"
    if harmful is not None:
        result.append(_choices(lc.PROMPT_HARMFUL, "prompt", ["yes" if harmful else "no"]))
    if row.get("categories") and harmful:
        result.append(_choices(lc.CATEGORIES, "prompt", sorted(row["categories"])))
    if kind == "answer":
        if row.get("response_kind") in lc.RESPONSE_KINDS:
            result.append(_choices(lc.RESPONSE_KIND, "response", [row["response_kind"]]))
        # pre-filled so an editor corrects the answer instead of retyping it; used only when the verdict is edit
        result.append({"from_name": lc.CORRECTED, "to_name": "response", "type": "textarea",
                       "value": {"text": [row["response"]]}})
    prediction: dict[str, Any] = {"model_version": version, "result": result}
    if s:
        prediction["score"] = round(max(s.values()), 4)
    return {"data": data, "predictions": [prediction]}


def parse_result(result: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Label Studio's result list to ``{control name: value}`` (choices: list, text: str, rating: int);
    a prompt marked not harmful carries no dimensions, a prompt-only task no answer decisions."""
    out: dict[str, Any] = {}
    shape = None
    for item in result or []:
        name, value = item.get("from_name"), item.get("value") or {}
        if name == lc.SHAPE:
            shape = (value.get("choices") or [None])[0]
        if name not in lc.FIELDS:
            continue
        if "choices" in value:
            out[name] = [str(c) for c in value["choices"]]
        elif "text" in value:
            text = value["text"]
            out[name] = "\n".join(text) if isinstance(text, list) else str(text)
        elif "rating" in value:
            out[name] = int(value["rating"])
    if shape == "prompt":
        # a prompt-only task hides the answer questions; a hotkey pressed by habit (r = reject) must not count
        for name in lc.ANSWER_FIELDS:
            out.pop(name, None)
    if out.get(lc.PROMPT_HARMFUL) == ["no"]:
        # dimensions are hidden under "not harmful": ticks left from before the switch do not count
        out.pop(lc.CATEGORIES, None)
    return out
