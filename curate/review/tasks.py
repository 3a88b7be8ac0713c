"""Records to Label Studio tasks (data + pre-annotations) and annotation results back to plain values.

The task's ``data.record_id`` is the link back to the corpus: push uses it to skip records already in the
project, pull uses it to find the row an annotation belongs to.
"""
from __future__ import annotations

from typing import Any

from curate import records
from curate.review import label_config as lc
from curate.review.sampling import scores


def model_version(rows: list[dict[str, Any]]) -> str:
    """One version string for a push's pre-annotations (Label Studio shows one model version at a time)."""
    clf = synth = None
    classified = False
    for row in rows:
        meta = records.load_meta(row.get("meta"))
        info = meta.get("classify") or {}
        classified = classified or bool(info)
        clf = clf or info.get("model") or info.get("model_version")
        synth = synth or (meta.get("synthesize") or {}).get("model")
    parts = [f"classify:{clf}" if clf else "classify" if classified else "labels:source"]
    if synth:
        parts.append(f"synthesize:{synth}")
    return " + ".join(str(p) for p in parts)[:200]


def _choices(name: str, to: str, values: list[str]) -> dict[str, Any]:
    return {"from_name": name, "to_name": to, "type": "choices", "value": {"choices": values}}


def task(row: dict[str, Any], stratum: str, priority: float | None, version: str) -> dict[str, Any]:
    """A Label Studio task with the record's classifier labels and answer as a pre-annotation."""
    s = scores(row.get("category_scores"))
    top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(s.items(), key=lambda kv: -kv[1])[:3])
    context = " · ".join(x for x in (row.get("lang"), row.get("source"), stratum,
                                     f"labels from {row.get('label_origin') or 'source'}",
                                     f"scores: {top}" if top else "") if x)
    data = {
        "record_id": row["id"], "prompt": row.get("prompt") or "", "reasoning": row.get("reasoning") or "",
        "response": row.get("response") or "", "lang": row.get("lang") or "", "source": row.get("source") or "",
        "stratum": stratum, "priority": priority, "context": context,
    }
    result = []
    if row.get("categories"):
        result.append(_choices(lc.CATEGORIES, "prompt", sorted(row["categories"])))
    if row.get("prompt_harmful") is not None:
        result.append(_choices(lc.PROMPT_HARMFUL, "prompt", ["yes" if row["prompt_harmful"] else "no"]))
    if row.get("response"):
        # pre-filled so an editor corrects the answer instead of retyping it; used only when the verdict is edit
        result.append({"from_name": lc.CORRECTED, "to_name": "response", "type": "textarea",
                       "value": {"text": [row["response"]]}})
    out: dict[str, Any] = {"data": data}
    if result:
        prediction: dict[str, Any] = {"model_version": version, "result": result}
        if s:
            prediction["score"] = round(max(s.values()), 4)
        out["predictions"] = [prediction]
    return out


def parse_result(result: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Label Studio's result list to ``{control name: value}`` (choices: list, text: str, rating: int)."""
    out: dict[str, Any] = {}
    for item in result or []:
        name, value = item.get("from_name"), item.get("value") or {}
        if name not in lc.FIELDS:
            continue
        if "choices" in value:
            out[name] = [str(c) for c in value["choices"]]
        elif "text" in value:
            text = value["text"]
            out[name] = "\n".join(text) if isinstance(text, list) else str(text)
        elif "rating" in value:
            out[name] = int(value["rating"])
    return out
