"""Fold reviewers' decisions back into the records, and measure how much reviewers agree.

Per task, each annotator's latest submitted (not skipped) annotation counts once. For every question
(each harm dimension ticked or not, prompt harmful yes/no, the verdict) the conflict rule decides:

- ``majority``: more than half of the annotators who answered decide; a tie is a conflict.
- ``adjudicate``: anything short of unanimity is a conflict.

A conflict changes nothing for that question and flags the row (``meta["review"]["needs_adjudication"]``).
Decided dimensions replace ``categories`` with ``label_origin = "human"``; a decided answer kind replaces
``response_kind``; an ``edit`` verdict replaces the
response with the corrected text (the old one kept in ``meta["review"]["original_response"]``); a ``reject``
verdict drops the row with ``drop_reason = "rejected_in_review"``.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Hashable

import polars as pl

from curate import records
from curate.review import label_config as lc
from curate.review.agreement import agreement

CONFLICT_RULES = ("majority", "adjudicate")
REJECTED = "rejected_in_review"


def _decide(votes: list[Hashable], rule: str) -> tuple[Hashable | None, bool]:
    """(decision, conflict). No votes: (None, False)."""
    if not votes:
        return None, False
    counts = Counter(votes).most_common()
    if rule == "adjudicate":
        return (counts[0][0], False) if len(counts) == 1 else (None, True)
    if counts[0][1] * 2 > len(votes):
        return counts[0][0], False
    return None, True


def latest_per_annotator(annotations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Submitted annotations, the newest per annotator, ordered by annotator id (stable rater order)."""
    best: dict[Any, dict[str, Any]] = {}
    for a in annotations:
        if a.get("was_cancelled"):
            continue
        who = a.get("completed_by")
        if who not in best or (a.get("updated_at") or "") >= (best[who].get("updated_at") or ""):
            best[who] = a
    return [best[k] for k in sorted(best, key=lambda x: (str(type(x)), x))]


def _labelled_prompt(result: dict[str, Any]) -> bool:
    # ticking no dimension means "safe" only when the annotator did label the prompt at all
    return lc.CATEGORIES in result or lc.PROMPT_HARMFUL in result


def decide_task(annotations: list[dict[str, Any]], harm_ids: list[str], rule: str) -> dict[str, Any]:
    anns = latest_per_annotator(annotations)
    results = [a["result"] for a in anns]
    labellers = [r for r in results if _labelled_prompt(r)]
    out: dict[str, Any] = {"annotators": [a["completed_by"] for a in anns],
                           "annotation_ids": [a["id"] for a in anns], "conflicts": []}
    ticked = {d for r in labellers for d in r.get(lc.CATEGORIES, [])}
    categories = set()
    for dim in sorted(set(harm_ids) | ticked):
        decision, conflict = _decide([dim in r.get(lc.CATEGORIES, []) for r in labellers], rule)
        if conflict:
            out["conflicts"].append(dim)
        elif decision:
            categories.add(dim)
    out["categories"] = sorted(categories) if labellers and not out["conflicts"] else None
    harmful, conflict = _decide([r[lc.PROMPT_HARMFUL][0] for r in results if r.get(lc.PROMPT_HARMFUL)], rule)
    if conflict:
        out["conflicts"].append(lc.PROMPT_HARMFUL)
    out["prompt_harmful"] = None if harmful is None else harmful == "yes"
    verdict, conflict = _decide([r[lc.VERDICT][0] for r in results if r.get(lc.VERDICT)], rule)
    if conflict:
        out["conflicts"].append(lc.VERDICT)
    out["verdict"] = verdict
    kind, conflict = _decide([r[lc.RESPONSE_KIND][0] for r in results if r.get(lc.RESPONSE_KIND)], rule)
    if conflict:
        out["conflicts"].append(lc.RESPONSE_KIND)
    out["response_kind"] = kind
    if verdict == "edit":
        edits = [a for a in anns if (a["result"].get(lc.VERDICT) or [None])[0] == "edit"
                 and (a["result"].get(lc.CORRECTED) or "").strip()]
        if edits:
            latest = max(edits, key=lambda a: a.get("updated_at") or "")
            out["corrected_response"] = latest["result"][lc.CORRECTED].strip()
            out["edit_variants"] = len({a["result"][lc.CORRECTED].strip() for a in edits})
    ratings = [r[lc.REASONING_RATING] for r in results if isinstance(r.get(lc.REASONING_RATING), int)]
    if ratings:
        out["reasoning_rating"] = round(sum(ratings) / len(ratings), 2)
    comments = [r[lc.COMMENT].strip() for r in results if (r.get(lc.COMMENT) or "").strip()]
    if comments:
        out["comments"] = comments
    return out


def agreement_report(tasks: list[list[dict[str, Any]]], harm_ids: list[str]) -> dict[str, Any]:
    """Agreement per dimension (ticked or not), for prompt harmful and for the verdict, over tasks with 2+ raters."""
    per_dim: dict[str, list[list[bool]]] = {}
    harmful: list[list[str]] = []
    verdict: list[list[str]] = []
    ticked = {d for anns in tasks for a in anns for d in a["result"].get(lc.CATEGORIES, [])}
    for anns in tasks:
        results = [a["result"] for a in latest_per_annotator(anns)]
        labellers = [r for r in results if _labelled_prompt(r)]
        for dim in sorted(ticked):
            per_dim.setdefault(dim, []).append([dim in r.get(lc.CATEGORIES, []) for r in labellers])
        harmful.append([r[lc.PROMPT_HARMFUL][0] for r in results if r.get(lc.PROMPT_HARMFUL)])
        verdict.append([r[lc.VERDICT][0] for r in results if r.get(lc.VERDICT)])
    order = {d: i for i, d in enumerate(harm_ids)}
    report = {"dimensions": {d: agreement(per_dim[d]) for d in sorted(per_dim, key=lambda d: (order.get(d, 99), d))},
              "prompt_harmful": agreement(harmful), "verdict": agreement(verdict)}
    report["multi_annotated_tasks"] = sum(1 for anns in tasks if len(latest_per_annotator(anns)) >= 2)
    return report


def merge(df: pl.DataFrame, state: dict[str, Any], *, harm_ids: list[str], rule: str = "majority",
          project: str | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The records with reviewers' decisions applied, and figures (counts and agreement)."""
    if rule not in CONFLICT_RULES:
        raise ValueError(f"unknown conflict rule {rule!r}; choose one of {', '.join(CONFLICT_RULES)}")
    by_record: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for task_id, t in state.get("tasks", {}).items():
        if t.get("record_id") and any(not a.get("was_cancelled") for a in t.get("annotations", [])):
            by_record[str(t["record_id"])] = (task_id, t["annotations"])
    ids = df["id"].to_list()
    index = {rid: i for i, rid in enumerate(ids)}
    categories = df["categories"].to_list()
    origin = df["label_origin"].to_list()
    harmful = df["prompt_harmful"].to_list()
    response = df["response"].to_list()
    response_kind = df["response_kind"].to_list()
    reject = [False] * len(ids)
    review_meta: list[dict[str, Any] | None] = [None] * len(ids)
    counts = Counter()
    for rid, (task_id, anns) in by_record.items():
        i = index.get(rid)
        if i is None:
            counts["not_in_input"] += 1
            continue
        d = decide_task(anns, harm_ids, rule)
        meta: dict[str, Any] = {"project": project, "task_id": int(task_id), "annotators": len(d["annotators"]),
                                "annotation_ids": d["annotation_ids"], "verdict": d["verdict"],
                                "conflicts": d["conflicts"], "needs_adjudication": bool(d["conflicts"])}
        for key in ("reasoning_rating", "comments", "edit_variants"):
            if key in d:
                meta[key] = d[key]
        if d["categories"] is not None:
            if sorted(categories[i] or []) != d["categories"]:
                counts["categories_changed"] += 1
            categories[i], origin[i] = d["categories"], "human"
        if d["prompt_harmful"] is not None:
            harmful[i] = d["prompt_harmful"]
        if d["response_kind"] is not None:
            response_kind[i] = d["response_kind"]
        if d["verdict"] == "reject":
            reject[i] = True
            counts["rejected"] += 1
        elif d["verdict"] == "edit" and d.get("corrected_response") and d["corrected_response"] != (response[i] or "").strip():
            meta["original_response"] = response[i]
            response[i] = d["corrected_response"]
            counts["edited"] += 1
        elif d["verdict"] == "accept":
            counts["accepted"] += 1
        counts["needs_adjudication"] += bool(d["conflicts"])
        counts["reviewed"] += 1
        review_meta[i] = meta
    out = df.with_columns(
        pl.Series("categories", categories, dtype=pl.List(pl.Utf8)),
        pl.Series("label_origin", origin, dtype=pl.Utf8),
        pl.Series("prompt_harmful", harmful, dtype=pl.Boolean),
        pl.Series("response", response, dtype=pl.Utf8),
        pl.Series("response_kind", response_kind, dtype=pl.Utf8),
        pl.col("reviewed") | pl.Series([m is not None for m in review_meta], dtype=pl.Boolean),
    )
    out = records.mark_dropped(out, pl.lit(pl.Series(reject, dtype=pl.Boolean)), REJECTED)
    out = records.with_stage_meta(out, "review", review_meta)
    stats = {k: counts.get(k, 0) for k in ("reviewed", "accepted", "edited", "rejected", "categories_changed",
                                           "needs_adjudication", "not_in_input")}
    stats["conflict_rule"] = rule
    stats["agreement"] = agreement_report([anns for _, anns in by_record.values()], harm_ids)
    return out, stats
