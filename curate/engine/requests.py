"""LLM requests on Dask workers: a stage's requests in consecutive batches, one task each, outcomes in order.

Every batch runs the one client (``curate.llm.run_requests``) against the one response cache (the run's
``cache/llm.sqlite``, sqlite in WAL mode, each answer committed on arrival), so an answer received by any
worker is never paid for again: not by a task re-run after its worker was lost, not by a resumed run.

What the stage decides stays in the stage, on the machine running curate: which rows, which requests, and
what is done with the answers. Only the sending is spread, so the output is the local engine's:

- without a budget the batches run at once, each client with its share of ``concurrency`` and of the rate
  limits (``LLMConfig.share``), so the endpoint sees the load of one local client;
- with a budget (``max_requests`` / ``max_total_tokens``) the batches run one after another, each with what
  the earlier ones left: the budget is the run's, and the requests it reaches are the first ones, in order,
  as locally (cache hits are free either way).
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

BATCHES_PER_WORKER = 4  # a lost worker costs a small batch; progress moves often enough


def batch_ranges(n: int, workers: int, cap: int) -> list[range]:
    """Consecutive ranges over ``n`` requests: about BATCHES_PER_WORKER per worker, at most ``cap`` each."""
    size = max(1, min(cap, -(-n // (max(1, workers) * BATCHES_PER_WORKER))))
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def budgeted(config) -> bool:
    return config.max_requests is not None or config.max_total_tokens is not None


def remaining(config, spent) -> Any:
    """``config`` with the budget ``spent`` (an LLMStats) has already used taken off (never below zero)."""
    left = lambda cap, used: None if cap is None else max(0, cap - used)  # noqa: E731
    return replace(config, max_requests=left(config.max_requests, spent.requests),
                   max_total_tokens=left(config.max_total_tokens, spent.total_tokens))


def key_for_workers(config) -> dict[str, str]:
    """The key a worker cannot have in its environment: the embedded server's, made when the run started it
    (loopback-only and valid for this server's life). Any other key is read from the workers' environment."""
    from curate.llm.local.endpoint import KEY_ENV

    value = os.environ.get(KEY_ENV)
    return {KEY_ENV: value} if config.api_key_env == KEY_ENV and value else {}


def request_batch(config, requests: list, key: dict[str, str]) -> tuple[list, Any]:
    """A worker task: the requests through one client (cache, retries, budget, breaker); (outcomes, stats)."""
    from curate.llm import run_requests

    os.environ.update(key)
    return run_requests(config, requests)
