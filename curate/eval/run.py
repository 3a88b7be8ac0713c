"""`curate eval`: send a suite through a model, score every answer, write items.parquet and summary.json.

1. load the suite (suite.py), flag items found in a training corpus (contamination.py);
2. ask the model through the shared client (curate.llm: concurrency, retries, cache, budget) with progress;
3. score: the response-kind detector for harmful/benign items, the reference for maths/multiple choice,
   optionally the LLM judge (verdict_judge.py);
4. summarise with intervals (summary.py) and write the result folder (results.py).

An item whose request failed keeps its error (status "failed"); one the budget did not reach is "budget"
(pending: run again to resume from the cache). Neither is scored, both are counted.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable

import polars as pl

from curate.eval import results, scoring, summary
from curate.eval.options import EvalOptions
from curate.eval.suite import load_suite
from curate.llm import LLMStats, Outcome, Request, run_requests
from curate.store import redact_url
from curate.progress import Progress


@dataclass
class EvalResult:
    summary: dict
    items: pl.DataFrame


def run_eval(opts: EvalOptions, log: Callable[[str], None] = print) -> EvalResult:
    """Evaluate; with the embedded model (``base_url: local``, the default) it is started for this eval and
    stopped after it, also on failure and Ctrl-C (or the one of `curate llm start` is reused)."""
    from curate.llm.local import LocalSession
    from curate.pipeline import _sigterm_as_interrupt  # the runner's own guard, so a killed eval stops its server

    if not opts.is_local():
        return _run_eval(opts, log)
    with LocalSession(log), _sigterm_as_interrupt():
        return _run_eval(opts, log)


def _run_eval(opts: EvalOptions, log: Callable[[str], None]) -> EvalResult:
    started = time.time()
    # no endpoint or model: fail before touching anything
    config = opts.llm_config(opts.out / results.CACHE, cache_truncated=True)
    suite = load_suite(opts.suite)
    out = results.prepare(opts.out)
    # one language after the other: a server that caches prompt prefixes (llama.cpp, vLLM) reuses the system prompt
    items = suite.items.sort("lang", maintain_order=True)
    if opts.train:
        from curate.eval.contamination import flag_in_train

        items = flag_in_train(items, list(opts.train), opts.contamination_threshold)
        log(f"[eval] {int(items['in_train'].sum())} of {items.height} items found in the training corpus")
    from curate.synthesize.kind import load_detector

    detector, detect = load_detector(opts.kind_detector, opts.kind_model_dir)  # fail on a bad model before paying
    systems = _system_prompts(opts, items["lang"].unique().to_list())
    stats = LLMStats()
    requests = [Request(messages=_messages(systems.get(lang), prompt),
                        params={"temperature": opts.temperature, "max_tokens": opts.max_tokens, "seed": opts.seed})
                for prompt, lang in zip(items["prompt"], items["lang"])]
    log(f"[eval] {len(requests)} items from {opts.suite} to {config.model} at {redact_url(config.base_url)}")
    with Progress(len(requests), "eval") as bar:
        outcomes, _ = run_requests(config, requests, on_done=lambda i, o: bar.advance(1), stats=stats)
    items = items.hstack(_answers(outcomes))
    items = _score(items, detect, detector)
    judge_stats = _judge(items, opts, config, stats) if opts.judge else None
    if judge_stats is not None:
        items, judge_stats = judge_stats
    items = summary.metric_columns(items)
    meta = {
        "model": config.model, "endpoint": redact_url(config.base_url), "suite": suite.name,
        "suite_file": str(opts.suite), "unlabelled": suite.unlabelled,
        "system_prompt": _system_prompt_meta(opts, systems),
        "params": {"temperature": opts.temperature, "max_tokens": opts.max_tokens, "seed": opts.seed},
        "kind_detector": detector, "judge": judge_stats, "llm": stats.as_dict(),
        "seconds": round(time.time() - started, 1),
    }
    result = summary.build(items, opts.small_n, meta)
    results.write(out, items, result)
    return EvalResult(result, items)


def _messages(system: str | None, prompt: str) -> list[dict]:
    user = [{"role": "user", "content": prompt}]
    return [{"role": "system", "content": system}, *user] if system else user


def _system_prompts(opts: EvalOptions, langs: list[str]) -> dict[str, str]:
    if opts.safety_prompt:
        from curate.eval.policy_prompt import safety_system_prompt

        return {lang: safety_system_prompt(lang, opts.taxonomy, opts.safety_prompt_style) for lang in langs}
    return {lang: opts.system_prompt for lang in langs} if opts.system_prompt else {}


def _system_prompt_meta(opts: EvalOptions, systems: dict[str, str]) -> dict:
    kind = f"safety_policies_{opts.safety_prompt_style}" if opts.safety_prompt else (
        "custom" if opts.system_prompt else "none")
    return {"kind": kind, "sha256": {lang: hashlib.sha256(text.encode()).hexdigest()[:16]
                                     for lang, text in sorted(systems.items())}}


def _answers(outcomes: list[Outcome]) -> pl.DataFrame:
    rows = []
    for out in outcomes:
        comp = out.completion if out.ok else None
        rows.append({
            "status": out.status, "error": out.error,
            "answer": comp.answer if comp else None, "reasoning": comp.reasoning if comp else None,
            "truncated": comp.truncated if comp else None,
            "completion_tokens": comp.completion_tokens if comp else None,
        })
    frame = pl.DataFrame(rows, schema={"status": pl.Utf8, "error": pl.Utf8, "answer": pl.Utf8, "reasoning": pl.Utf8,
                                       "truncated": pl.Boolean, "completion_tokens": pl.Int64})
    return frame.with_columns(pl.col("answer").str.len_chars().alias("answer_chars"),
                              pl.col("reasoning").fill_null("").str.len_chars().alias("reasoning_chars"))


def _score(items: pl.DataFrame, detect, detector: str) -> pl.DataFrame:
    """verdict + judged_by for every answered item; the detector sees only harmful/benign answers."""
    ok = pl.col("status") == "ok"
    by_kind = items.with_row_index("_row").filter(ok & pl.col("task").is_in(["harmful", "benign"]))
    kinds = detect(by_kind["prompt"].to_list(), by_kind["answer"].to_list(), by_kind["lang"].to_list()) \
        if by_kind.height else []
    kind_frame = pl.DataFrame({"_row": by_kind["_row"], "response_kind": pl.Series(kinds, dtype=pl.Utf8)})
    items = items.with_row_index("_row").join(kind_frame, on="_row", how="left").sort("_row").drop("_row")
    extracted, by_reference = scoring.reference_verdicts(pl.col("task"), pl.col("answer"), pl.col("reference"))
    has_reference = pl.col("task").is_in(["math", "mcq", "risk_mcq"])
    return items.with_columns(
        pl.when(ok & has_reference).then(extracted).alias("extracted"),
        pl.when(ok).then(pl.when(has_reference).then(by_reference)
                         .otherwise(scoring.kind_verdicts(pl.col("task"), pl.col("response_kind")))).alias("verdict"),
        pl.when(ok).then(pl.when(has_reference).then(pl.lit("reference")).otherwise(pl.lit(detector)))
        .alias("judged_by"))


def _judge(items: pl.DataFrame, opts: EvalOptions, config, stats: LLMStats) -> tuple[pl.DataFrame, dict]:
    """The judge's verdict replaces the detector's where it answered; ``detector_verdict`` keeps the other."""
    from curate.eval.verdict_judge import judge_request, usable

    todo = items.with_row_index("_row").filter((pl.col("status") == "ok") & pl.col("task").is_in(["harmful", "benign"]))
    requests = [judge_request(t, p, a, mode=opts.json_mode, model=opts.judge_model)
                for t, p, a in zip(todo["task"], todo["prompt"], todo["answer"])]
    with Progress(len(requests), "eval: judge") as bar:
        outcomes, _ = run_requests(config, requests, on_done=lambda i, o: bar.advance(1), stats=stats)
    verdicts = [usable(t, o.parsed) if o.ok else None for t, o in zip(todo["task"], outcomes)]
    judged = pl.DataFrame({"_row": todo["_row"], "judge_verdict": pl.Series(verdicts, dtype=pl.Utf8)})
    items = items.with_row_index("_row").join(judged, on="_row", how="left").sort("_row").drop("_row")
    items = items.with_columns(pl.col("verdict").alias("detector_verdict")).with_columns(
        pl.coalesce("judge_verdict", "verdict").alias("verdict"),
        pl.when(pl.col("judge_verdict").is_not_null()).then(pl.lit("judge")).otherwise(pl.col("judged_by"))
        .alias("judged_by"),
        (pl.col("judge_verdict").is_not_null() & (pl.col("judge_verdict") != pl.col("detector_verdict")))
        .alias("judge_disagrees"))
    return items, {"model": opts.judge_model or config.model, "asked": len(requests),
                   "answered": sum(v is not None for v in verdicts),
                   "disagreements": int(items["judge_disagrees"].sum())}
