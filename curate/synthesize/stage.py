"""The synthesize stage: policy-grounded reasoning + answer for every labelled prompt that needs one.

1. plan: pick the rows to send (not dropped, not general data, no good source answer) and their goal;
2. generate K candidates per row through the shared LLM client (cache, retries, budget), sent by the engine:
   from this process, or in batches from Dask workers sharing the one response cache;
3. check each candidate (filters.py, kind.py), optionally score it with the judge (judge.py);
4. keep the best passing candidate that is not a near-duplicate of an answer already in the corpus.

Steps 1, 3 and 4 span all rows (a stratified sample, a near-duplicate index in a fixed order), so they run
in this process with any engine; only the requests of steps 2 and 3 (the judge) are spread, which keeps the
output of the Dask engine the local engine's.

Rows are never deleted: a row whose candidates all fail gets the reason of its best candidate, a row
whose requests all failed gets ``synthesis_failed`` with the last error, and a row the budget did not
reach stays pending (``synthesis_status == "pending"``) for a resumed run. An endpoint that stops
answering altogether (the client's circuit breaker) stops the stage with one line and writes nothing: its
rows stay pending, and the next run sends them again (cached answers are not paid twice).
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from curate import records
from curate.llm import Completion, LLMStats, Outcome, Request
from curate.llm.breaker import raise_if_unreachable
from curate.llm.reasoning import reasoning_grammar
from curate.llm.config import BASE_URL_ENV, MODEL_ENV
from curate.llm.local.endpoint import restart_if_dead
from curate.llm.local.errors import LocalModelError
from curate.stage import StageContext
from curate.store import redact_url
from curate.synthesize.cleanup import clean_answer
from curate.synthesize.filters import DEFAULT_BOILERPLATE, Bounds, check_candidate
from curate.synthesize.goals import DimensionPolicy, goal_for, load_policies, render_policies
from curate.synthesize.answer_judge import JudgeScores, judge_request
from curate.synthesize.kind import KindFn, kind_mismatch, load_detector
from curate.synthesize.neardup import AnswerIndex
from curate.synthesize.refusal import is_refusal
from curate.synthesize.options import SynthesizeOptions
from curate.synthesize.sample import stratified
from curate.synthesize.templates import DEFAULT_DIR, Template, language_name, load_template, template_lang

STAGE = "synthesize"


@dataclass
class Job:
    row: int  # index in the input frame
    id: str
    prompt: str
    lang: str
    goal: str
    template: Template
    system: str
    policies: str  # rendered policy text (reused by the judge)
    rewrite: str | None  # why the source answer is replaced ("unsafe" / "mismatched"), None: no source answer
    dimensions: tuple[str, ...] = ()  # the row's categories (the sample is stratified by them)
    candidates: list["Candidate"] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    budget_hit: bool = False


@dataclass
class Candidate:
    k: int
    comp: Completion
    reason: str | None = None
    scores: JudgeScores | None = None


def run(df: pl.DataFrame, opts: SynthesizeOptions, ctx: StageContext) -> pl.DataFrame:
    opts = opts.effective()
    policies = load_policies(ctx.taxonomy_path)
    jobs, meta = plan(df, opts, policies)
    status = Counter(m["status"] for m in meta if m)
    ctx.stats.update({"rows": dict(status), "goals": dict(Counter(j.goal for j in jobs))})
    base_url = opts.endpoint()
    if not base_url:
        ctx.log(f"[synthesize] skipped: model calls are off, {len(jobs):,} rows left pending. {_HOW_TO_ENABLE}")
        return write_facts(df, meta)
    jobs = _take_sample(jobs, opts, meta, ctx)
    if not jobs:
        return write_facts(df, meta)
    try:
        config = opts.llm_config(ctx.work_dir)
    except LocalModelError as exc:  # no compiler, no network for the first fetch...: say why, keep rows pending
        ctx.log(f"[synthesize] skipped: the embedded model is not available ({exc}); {len(jobs):,} rows left "
                f"pending. {_HOW_TO_ENABLE}")
        ctx.stats["skipped"] = str(exc)
        return write_facts(df, meta)
    detector, detect = load_detector(opts.kind_detector, opts.kind_model_dir)  # fail on a bad model before paying
    llm_stats = LLMStats()
    generate(jobs, opts, config, ctx, llm_stats)
    evaluate(jobs, opts, detect, ctx, config, llm_stats)
    updates = select(df, jobs, opts, meta)
    out = apply(df, updates, meta)
    ctx.stats.update(llm_stats.as_dict())
    ctx.stats.update({
        "rows": dict(Counter(m["status"] for m in meta if m)),
        "endpoint": redact_url(config.base_url), "model": config.model,
        "response_kind_detector": detector,
        "templates": {j.template.id: j.template.sha for j in jobs},
    })
    return out


_HOW_TO_ENABLE = (f"To use another endpoint set {BASE_URL_ENV} and {MODEL_ENV} (key in $OPENAI_API_KEY), "
                  "or pass --base-url and --model.")


def _take_sample(jobs: list[Job], opts: SynthesizeOptions, meta: list, ctx: StageContext) -> list[Job]:
    """The stratified sample this run sends; the other rows stay pending with ``pending_reason: sample``."""
    chosen, rest = stratified(jobs, opts.sample, keys=(lambda j: j.lang, lambda j: j.goal, _first_dimension),
                              ident=lambda j: j.id)
    for job in rest:
        meta[job.row]["pending_reason"] = "sample"
    if rest:
        ctx.log(f"[synthesize] sample: {len(chosen):,} of {len(jobs):,} rows (stratified by language, goal and "
                f"dimension); {len(rest):,} stay pending. Set synthesize.sample to change it (0 = all).")
    ctx.stats["sample"] = {"size": len(chosen), "planned": len(jobs), "left_pending": len(rest)}
    return chosen


def _first_dimension(job: Job) -> str:
    return job.dimensions[0] if job.dimensions else "S00"


# -- 1. plan ------------------------------------------------------------------------------------

def plan(df: pl.DataFrame, opts: SynthesizeOptions, policies: dict[str, DimensionPolicy]) -> tuple[list[Job], list]:
    """The rows to send, and for every row the meta["synthesize"] entry to write (None: untouched)."""
    templates_dir = Path(opts.templates_dir) if opts.templates_dir else DEFAULT_DIR
    safe_list = frozenset(opts.safe_completion_categories)
    jobs: list[Job] = []
    meta: list[dict[str, Any] | None] = []
    cols = ("id", "prompt", "lang", "response", "response_kind", "prompt_harmful", "categories", "drop_reason", "role")
    for i, row in enumerate(df.select(cols).iter_rows(named=True)):
        if row["drop_reason"] is not None:
            meta.append(None)  # already rejected upstream: not sent
            continue
        if row["role"] == "general":
            meta.append({"status": "passthrough"})
            continue
        goal = goal_for(row["prompt_harmful"], row["categories"] or [], policies, safe_list)
        rewrite = None
        if (row["response"] or "").strip():
            rewrite = _rewrite_reason(goal, row["response_kind"], opts)
            if rewrite is None:
                meta.append({"status": "source_kept_unsafe" if row["response_kind"] == "harmful" else "source_kept"})
                continue
        if goal is None:
            meta.append({"status": "unlabelled"})  # classify has not decided harmful/safe yet
            continue
        tlang = template_lang(row["lang"])
        template = load_template(templates_dir, tlang, goal, opts.template_version)
        dims, pol = render_policies(row["categories"] or [], policies, tlang)
        system = template.render(dimensions=dims, policies=pol, language=language_name(row["lang"]), goal=goal)
        jobs.append(Job(i, row["id"], row["prompt"], row["lang"], goal, template, system, pol, rewrite,
                        dimensions=tuple(row["categories"] or ())))
        meta.append({"status": "pending", "goal": goal, "template": template.id, "template_sha": template.sha,
                     **({"rewrite": rewrite, "rewrite_of_sha": _sha(row["response"])} if rewrite else {})})
    return jobs, meta


def _rewrite_reason(goal: str | None, kind: str | None, opts: SynthesizeOptions) -> str | None:
    """Why a source answer is replaced ("unsafe" / "mismatched"), or None to keep it as it is."""
    if goal is None or kind is None:
        return None
    if kind == "harmful":
        return "unsafe" if opts.rewrite_unsafe else None
    if opts.rewrite_mismatched and kind_mismatch(goal, kind) is not None:
        return "mismatched"
    return None


# -- 2. generate --------------------------------------------------------------------------------

def generate(jobs: list[Job], opts: SynthesizeOptions, config, ctx: StageContext, stats: LLMStats) -> None:
    k = opts.n_candidates
    params: dict[str, Any] = {"temperature": opts.temperature, "max_tokens": opts.max_tokens}
    requests = [Request(messages=[{"role": "system", "content": job.system}, {"role": "user", "content": job.prompt}],
                        params={**params, **_grammar(job.template, opts), "seed": opts.seed + c})
                for job in jobs for c in range(k)]
    with ctx.progress(len(requests), "synthesize", unit="answer") as bar:  # k answers per row
        outcomes, _ = ctx.engine.run_requests(config, requests, on_done=lambda i, o: bar.advance(1), stats=stats)
    failed = [i for i, out in enumerate(outcomes) if out.status == "failed"]
    if failed and opts.is_local() and restart_if_dead():
        # The embedded server died under the run: ask the failed requests once more on the new one (answered
        # requests are not repeated: they are in outcomes and in the cache).
        ctx.log(f"[synthesize] the embedded server died; restarted it, asking {len(failed):,} failed requests again")
        retried, _ = ctx.engine.run_requests(opts.llm_config(ctx.work_dir), [requests[i] for i in failed], stats=stats)
        for i, out in zip(failed, retried):
            outcomes[i] = out
    raise_if_unreachable(outcomes, config.base_url, f"{len(jobs):,} rows")
    for i, out in enumerate(outcomes):
        _collect(jobs[i // k], i % k, out)


def _grammar(template: Template, opts: SynthesizeOptions) -> dict[str, str]:
    """The request's shape grammar (llama.cpp only), opened with the template's leads; {} when not used."""
    if not opts.uses_shape_grammar():
        return {}
    return {"grammar": reasoning_grammar(opts.min_reasoning_chars, opts.max_reasoning_chars, template.shape)}


def _collect(job: Job, k: int, out: Outcome) -> None:
    if out.status == "budget":
        job.budget_hit = True
    elif out.status == "failed":
        job.errors.append(out.error or "failed")
    else:
        job.candidates.append(Candidate(k, out.completion))


# -- 3. evaluate --------------------------------------------------------------------------------

def evaluate(jobs: list[Job], opts: SynthesizeOptions, detect: KindFn, ctx: StageContext, config,
             stats: LLMStats) -> None:
    """Set each candidate's drop reason (None = passes)."""
    bounds = Bounds(opts.min_response_chars, opts.max_response_chars, opts.min_reasoning_chars)
    blocklist = tuple(p.lower() for p in (*DEFAULT_BOILERPLATE, *opts.boilerplate))
    grammar = opts.uses_shape_grammar()
    cap = lambda job: job.template.shape.reasoning_cap(opts.max_reasoning_chars) if grammar else None  # noqa: E731
    for job in jobs:
        for cand in job.candidates:
            cand.comp = replace(cand.comp, answer=clean_answer(cand.comp.answer))
            cand.reason = check_candidate(cand.comp, job.lang, bounds, blocklist, prompt=job.prompt, goal=job.goal,
                                          instruction_heads=job.template.instruction_heads, reasoning_cap=cap(job))
    todo = [(job, c) for job in jobs for c in job.candidates if c.reason is None]
    if todo:
        kinds = detect([j.prompt for j, _ in todo], [c.comp.answer for _, c in todo], [j.lang for j, _ in todo])
        for (job, cand), kind in zip(todo, kinds):
            cand.reason = kind_mismatch(job.goal, kind, declines=is_refusal(cand.comp.answer))
    if opts.judge:
        _judge(jobs, opts, ctx, config, stats)


def _judge(jobs: list[Job], opts: SynthesizeOptions, ctx: StageContext, config, stats: LLMStats) -> None:
    todo = [(job, c) for job in jobs for c in job.candidates if c.reason is None]
    if not todo:
        return
    requests = []
    for job, cand in todo:
        template = load_template(Path(opts.templates_dir) if opts.templates_dir else DEFAULT_DIR,
                                 job.template.lang, "judge", opts.template_version)
        requests.append(judge_request(template, goal=job.goal, policies=job.policies, prompt=job.prompt,
                                      reasoning=cand.comp.reasoning or "", response=cand.comp.answer,
                                      mode=opts.json_mode, model=opts.judge_model))
    with ctx.progress(len(requests), "synthesize: judge", unit="answer") as bar:
        outcomes, _ = ctx.engine.run_requests(config, requests, on_done=lambda i, o: bar.advance(1), stats=stats)
    raise_if_unreachable(outcomes, config.base_url, f"{len(jobs):,} rows")
    for (job, cand), out in zip(todo, outcomes):
        if out.status == "budget":
            job.budget_hit = True
        elif out.status == "failed":
            cand.reason = "synthesis_failed"
            job.errors.append(f"judge: {out.error}")
        else:
            cand.scores = out.parsed
            if not cand.scores.passes(opts.judge_threshold):
                cand.reason = "synth_judge_low"


# -- 4. select ----------------------------------------------------------------------------------

@dataclass
class Update:
    row: int
    response: str | None = None
    reasoning: str | None = None
    kind: str | None = None
    drop: str | None = None


def select(df: pl.DataFrame, jobs: list[Job], opts: SynthesizeOptions, meta: list) -> list[Update]:
    index = AnswerIndex(opts.near_duplicate_threshold) if opts.near_duplicate_threshold else None
    if index is not None:  # answers already in the corpus come first: a new answer must not copy them
        sent = {j.row for j in jobs}
        for i, (rid, resp, drop) in enumerate(df.select("id", "response", "drop_reason").iter_rows()):
            if i not in sent and drop is None and resp and resp.strip():
                index.add(rid, resp)
    updates = []
    for job in sorted(jobs, key=lambda j: j.id):  # a fixed order: the same input keeps the same answers
        m = meta[job.row]
        m["candidates"] = [_candidate_lineage(c) for c in job.candidates]
        if job.errors:
            m["error"] = job.errors[-1]
        if job.budget_hit:
            m.update(status="pending", pending_reason="budget")
            continue
        passing = sorted((c for c in job.candidates if c.reason is None),
                         key=lambda c: (-(c.scores.total if c.scores else 0), c.k))
        chosen = None
        for cand in passing:
            if index is not None and index.add_if_new(f"{job.id}#{cand.k}", cand.comp.answer) is not None:
                cand.reason = "synth_near_duplicate"
                m["candidates"][job.candidates.index(cand)] = _candidate_lineage(cand)
                continue
            chosen = cand
            break
        if chosen is not None:
            comp = chosen.comp
            # No per-row "cached" flag: a resumed run must write the same rows as an uninterrupted one;
            # cache hits are counted in the stage manifest (ctx.stats) instead.
            m.update(status="synthesized", model=comp.model, candidate=chosen.k,
                     tokens=comp.prompt_tokens + comp.completion_tokens)
            if chosen.scores:
                m["judge"] = chosen.scores.model_dump()
                m["judge_score"] = chosen.scores.mean
            updates.append(Update(job.row, comp.answer, comp.reasoning, job.goal))
            continue
        reasons = [c.reason for c in job.candidates if c.reason]
        reason = Counter(reasons).most_common(1)[0][0] if reasons else "synthesis_failed"
        m["status"] = "failed" if reason == "synthesis_failed" else "rejected"
        updates.append(Update(job.row, drop=reason))
    return updates


RAW_CHARS = 4000  # how much of a dropped candidate's raw answer the lineage keeps


def _candidate_lineage(cand: Candidate) -> dict[str, Any]:
    """What meta says about one candidate; a rejected one keeps the model's raw answer, so anyone can see why."""
    out: dict[str, Any] = {"k": cand.k, "reason": cand.reason}
    if cand.scores:
        out["scores"] = cand.scores.model_dump()
    if cand.reason:
        out["raw"] = cand.comp.content[:RAW_CHARS]
        out["finish_reason"] = cand.comp.finish_reason
    return out


def apply(df: pl.DataFrame, updates: list[Update], meta: list) -> pl.DataFrame:
    response, reasoning, kind = df["response"].to_list(), df["reasoning"].to_list(), df["response_kind"].to_list()
    drops: dict[str, list[str]] = {}
    ids = df["id"].to_list()
    for u in updates:
        if u.drop:
            drops.setdefault(u.drop, []).append(ids[u.row])
        else:
            response[u.row], reasoning[u.row], kind[u.row] = u.response, u.reasoning, u.kind
    out = df.with_columns(pl.Series("response", response, dtype=pl.Utf8), pl.Series("reasoning", reasoning, dtype=pl.Utf8),
                          pl.Series("response_kind", kind, dtype=pl.Utf8))
    for reason, rows in drops.items():
        out = records.mark_dropped(out, pl.col("id").is_in(rows), reason)
    return write_facts(out, meta)


FACTS = ("answer_origin", "answer_model", "answer_template", "answer_judge_score", "synthesis_status")
_FACT_KEYS = {"answer_model": "model", "answer_template": "template", "answer_judge_score": "judge_score",
              "synthesis_status": "status"}


def write_facts(df: pl.DataFrame, meta: list) -> pl.DataFrame:
    """Each row's ``meta["synthesize"]`` entry as lineage, and the facts later stages read as columns (a row
    without an entry keeps its values)."""
    out = records.with_stage_meta(df, STAGE, meta)
    touched = pl.Series([m is not None for m in meta], dtype=pl.Boolean)
    columns = [pl.when(touched).then(pl.Series([(m or {}).get(key) for m in meta], dtype=records.SCHEMA[name]))
               .otherwise(pl.col(name)).alias(name) for name, key in _FACT_KEYS.items()]
    synthesized = pl.Series([(m or {}).get("status") == "synthesized" for m in meta], dtype=pl.Boolean)
    columns.append(pl.when(synthesized).then(pl.lit("synthesized")).otherwise(pl.col("answer_origin"))
                   .alias("answer_origin"))
    return out.with_columns(columns)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
