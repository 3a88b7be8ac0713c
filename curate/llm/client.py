"""The async chat client every stage uses: bounded concurrency, rate limits, retries, cache, budget.

Built on ``openai.AsyncOpenAI`` with the library's own retries off (``max_retries=0``): we retry here so
that every retry is counted, ``Retry-After`` pauses all workers (not just the one that got the 429),
and a budget can stop the run between attempts. One ``Request`` in, one ``Outcome`` out, never an
exception for a bad answer: the caller decides what a failed or budget-stopped outcome means.
A circuit breaker (breaker.py) turns an endpoint that stopped answering into "unreachable" outcomes at once,
so callers stop instead of failing every row; connecting times out in seconds, reading per max_tokens.
"""
from __future__ import annotations

import asyncio
import importlib
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable, Iterable

import openai
from aiolimiter import AsyncLimiter
from openai.types.chat import ChatCompletion

from curate.llm.breaker import CircuitBreaker, is_connection_failure
from curate.llm.cache import ResponseCache, cache_key
from curate.llm.config import LLMConfig
from curate.llm.reasoning import split_reasoning
from curate.llm.retry import backoff_delay, describe, is_transient, retry_after


# Failures of the endpoint itself are retried apart from a row's own retries, with waits that stop growing
# after this many doublings: the breaker, not the wait, stops a dead endpoint.
CONNECTION_BACKOFF_STEPS = 3


class MalformedAnswer(ValueError):
    """Raised by a Request's ``parse`` when the answer does not have the expected shape (it is re-asked)."""


@dataclass(frozen=True)
class Request:
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)  # temperature, max_tokens, seed, response_format...
    model: str | None = None  # None: the config's model
    parse: Callable[["Completion"], Any] | None = None  # raise MalformedAnswer to re-ask; result -> Outcome.parsed


@dataclass
class Completion:
    content: str  # raw message content
    reasoning: str | None  # reasoning_content, or the <think>/<reasoning> block
    answer: str  # content without the reasoning block
    finish_reason: str | None
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def to_cache(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("cached")
        return out

    @classmethod
    def from_cache(cls, value: dict[str, Any]) -> "Completion":
        return cls(**{**value, "cached": True})


@dataclass
class Outcome:
    status: str  # "ok" | "failed" | "budget" | "unreachable" (the breaker opened: not tried, not the row's fault)
    completion: Completion | None = None
    parsed: Any = None
    error: str | None = None
    attempts: int = 0  # HTTP requests this outcome cost (0 for a cache hit)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class LLMStats:
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0  # transient failures retried
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failed: int = 0  # outcomes that failed after retries
    malformed: int = 0  # answers that failed to parse (re-asked or failed)
    truncated: int = 0  # answers cut off at max_tokens
    budget_stopped: int = 0  # outcomes not attempted because the budget ran out
    unreachable: int = 0  # outcomes given up because the endpoint stopped answering (the breaker opened)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total_tokens": self.total_tokens}

    def add(self, other: "LLMStats") -> None:
        """Count ``other``'s figures into these (the calls of several processes, one run's figures)."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


class LLMClient:
    """``async with LLMClient(config) as llm: outcomes = await llm.map(requests)``."""

    def __init__(self, config: LLMConfig, *, seed: int | None = None):
        self.config = config
        self.stats = LLMStats()
        self._rng = random.Random(seed)
        self._client: openai.AsyncOpenAI | None = None
        self._cache: ResponseCache | None = None
        self._sem = asyncio.Semaphore(config.concurrency)
        self._rpm = _per_minute(config.requests_per_minute, burst_seconds=1)
        self._tpm = _per_minute(config.tokens_per_minute, burst_seconds=10)
        self._pause_until = 0.0  # loop time before which nobody sends (set by Retry-After)
        self.breaker = CircuitBreaker(config.breaker_failures)

    async def __aenter__(self) -> "LLMClient":
        cfg = self.config
        self._client = openai.AsyncOpenAI(base_url=cfg.base_url, api_key=cfg.api_key(), max_retries=0,
                                          timeout=self._timeout({}), http_client=_http_client(cfg.concurrency))
        if cfg.cache_path is not None:
            self._cache = ResponseCache(cfg.cache_path)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._client is not None:
            await self._client.close()
        if self._cache is not None:
            self._cache.close()

    # -- budget ---------------------------------------------------------------------------------
    def budget_left(self) -> bool:
        cfg, s = self.config, self.stats
        if cfg.max_requests is not None and s.requests >= cfg.max_requests:
            return False
        if cfg.max_total_tokens is not None and s.total_tokens >= cfg.max_total_tokens:
            return False
        return True

    # -- one request ----------------------------------------------------------------------------
    async def complete(self, req: Request) -> Outcome:
        model = req.model or self.config.model
        key = cache_key(model, req.params, req.messages)
        if self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None:
                comp = Completion.from_cache(hit)
                try:
                    parsed = req.parse(comp) if req.parse else None
                except MalformedAnswer:
                    pass  # the parser changed since this was stored: ask again
                else:
                    self.stats.cache_hits += 1
                    return Outcome("ok", comp, parsed)
        attempts = transient = malformed = endpoint_retries = 0
        while True:
            if self.breaker.open:
                self.stats.unreachable += 1
                return Outcome("unreachable", error=self.breaker.last_error, attempts=attempts)
            if self.budget_left():
                await self._wait_turn(req)
            # Checked again right before counting (no await in between), so concurrent workers cannot overshoot
            # a request budget; a token budget can be overshot by the answers already in flight.
            if not self.budget_left():
                self.stats.budget_stopped += 1
                return Outcome("budget", error="budget exhausted", attempts=attempts)
            attempts += 1
            self.stats.requests += 1
            answers_when_sent = self.breaker.answers
            try:
                async with self._sem:
                    answers_when_sent = self.breaker.answers  # now, not before waiting for a free slot
                    # The SDK's post() skips create()'s per-field TypedDict transform of our already plain-JSON
                    # body (~1 ms of CPU per request at high concurrency); errors and parsing are the same.
                    resp = await self._client.post("/chat/completions", cast_to=ChatCompletion,
                                                   body={"model": model, "messages": req.messages, **req.params},
                                                   options={"timeout": self._timeout(req.params)})
                self.breaker.success()
                comp = _completion(resp, model)
            except Exception as exc:  # noqa: BLE001 - classified below; never propagates for a bad answer
                if is_connection_failure(exc) and self.breaker.failure(describe(exc), answers_when_sent):
                    # The endpoint's fault, not the row's: retried without using the row's retries until it
                    # answers or the breaker opens (then the top of the loop gives up on this request).
                    if not self.breaker.open:
                        await self._backoff(min(endpoint_retries, CONNECTION_BACKOFF_STEPS), exc)
                        endpoint_retries += 1
                        self.stats.retries += 1
                    continue
                if isinstance(exc, openai.APIStatusError):
                    self.breaker.success()  # an HTTP answer, even an error, means the endpoint is there
                if (is_transient(exc) or isinstance(exc, _MalformedResponse)) and transient < self.config.max_retries:
                    await self._backoff(transient, exc)
                    transient += 1
                    self.stats.retries += 1
                    continue
                self.stats.failed += 1
                return Outcome("failed", error=describe(exc), attempts=attempts)
            self.stats.prompt_tokens += comp.prompt_tokens
            self.stats.completion_tokens += comp.completion_tokens
            if comp.truncated:
                self.stats.truncated += 1
            try:
                parsed = req.parse(comp) if req.parse else None
            except MalformedAnswer as exc:
                self.stats.malformed += 1
                malformed += 1
                if malformed <= self.config.json_retries:
                    continue
                self.stats.failed += 1
                return Outcome("failed", comp, error=f"malformed answer: {str(exc)[:200]}", attempts=attempts)
            if self._cache is not None and (self.config.cache_truncated or not comp.truncated) and comp.content.strip():
                self._cache.put(key, model, comp.to_cache())
            return Outcome("ok", comp, parsed, attempts=attempts)

    def _timeout(self, params: dict[str, Any]):
        """Connect fast (a down endpoint shows in seconds), read as long as ``max_tokens`` may take."""
        return _http_lib().Timeout(self.config.read_timeout(params), connect=self.config.connect_timeout)

    async def _wait_turn(self, req: Request) -> None:
        loop = asyncio.get_running_loop()
        while (delay := self._pause_until - loop.time()) > 0:
            await asyncio.sleep(delay)
        if self._rpm is not None:
            await self._rpm.acquire()
        if self._tpm is not None:
            await self._tpm.acquire(min(_estimate_tokens(req), self._tpm.max_rate))

    async def _backoff(self, attempt: int, exc: BaseException) -> None:
        server_wait = retry_after(exc)
        delay = backoff_delay(attempt, self.config.backoff_base, self.config.backoff_max, server_wait, self._rng)
        if server_wait is not None:  # the server is telling everyone to wait, not just this request
            loop = asyncio.get_running_loop()
            self._pause_until = max(self._pause_until, loop.time() + min(server_wait, self.config.backoff_max))
        await asyncio.sleep(delay)

    # -- many requests --------------------------------------------------------------------------
    async def map(self, requests: Iterable[Request],
                  on_done: Callable[[int, Outcome], Awaitable[None] | None] | None = None) -> list[Outcome]:
        """Run requests with ``concurrency`` workers; outcomes in input order. Stops early on budget."""
        items = list(requests)
        outcomes: list[Outcome | None] = [None] * len(items)
        queue = iter(enumerate(items))

        async def worker() -> None:
            for i, req in queue:  # the shared iterator hands each index to exactly one worker
                out = await self.complete(req)
                outcomes[i] = out
                if on_done is not None:
                    res = on_done(i, out)
                    if asyncio.iscoroutine(res):
                        await res

        await asyncio.gather(*(worker() for _ in range(min(self.config.concurrency, len(items)) or 1)))
        return [o if o is not None else Outcome("budget", error="budget exhausted") for o in outcomes]


class _MalformedResponse(ValueError):
    """The server answered 200 with something that is not a chat completion."""


def _completion(resp: Any, model: str) -> Completion:
    choices = getattr(resp, "choices", None)
    if not choices:
        raise _MalformedResponse("response has no choices")
    message = choices[0].message
    content = message.content or ""
    # vLLM and DeepSeek: reasoning_content; some newer servers: reasoning. llama.cpp: None (tags in content).
    field_reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
    reasoning, answer = split_reasoning(content, field_reasoning if isinstance(field_reasoning, str) else None)
    usage = getattr(resp, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", None) or 0
    completion_tokens = getattr(usage, "completion_tokens", None)
    if completion_tokens is None:
        completion_tokens = (len(content) + len(reasoning or "")) // 4  # rough, for servers without usage
    return Completion(content=content, reasoning=reasoning, answer=answer,
                      finish_reason=choices[0].finish_reason, model=getattr(resp, "model", None) or model,
                      prompt_tokens=int(prompt_tokens), completion_tokens=int(completion_tokens))


def _http_client(concurrency: int):
    """The SDK's default HTTP client with a keep-alive pool as large as our concurrency.

    The Limits class comes from the HTTP library the installed SDK is built on (httpx, or its successor in
    newer SDKs), so this works across openai versions.
    """
    return openai.DefaultAsyncHttpxClient(limits=_http_lib().Limits(max_connections=concurrency,
                                                                    max_keepalive_connections=concurrency))


def _http_lib():
    """The HTTP library the installed SDK is built on (its Limits and Timeout classes)."""
    return importlib.import_module(openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0])


def _per_minute(rate: float | None, *, burst_seconds: float) -> AsyncLimiter | None:
    """A leaky bucket passing ``rate`` per minute with bursts of at most ``burst_seconds`` worth (>= 1)."""
    if not rate:
        return None
    capacity = max(1.0, rate * burst_seconds / 60)
    return AsyncLimiter(capacity, capacity * 60 / rate)


def _estimate_tokens(req: Request) -> int:
    chars = sum(len(str(m.get("content", ""))) for m in req.messages)
    return chars // 3 + int(req.params.get("max_tokens") or req.params.get("max_completion_tokens") or 512)
