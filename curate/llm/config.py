"""Where an LLM endpoint is and how hard to use it: one config for every stage that calls a model.

Stage options that call a model subclass ``LLMOptions`` (so the CLI flags and YAML keys are the same in
synthesize, classify's judge and review) and turn it into an ``LLMConfig`` with ``.llm_config(...)``.
The API key is never an option: it is read from the environment variable named by ``api_key_env`` at
the moment the client is built, so it cannot end up in a config file, a manifest or the cache.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import Field

from curate.errors import UsageError
from curate.llm.breaker import DEFAULT_FAILURES
from curate.stage import StageOptions
from curate.store import redact_url

BASE_URL_ENV = "OPENAI_BASE_URL"
MODEL_ENV = "OPENAI_MODEL"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
# Local servers (vLLM, llama.cpp) accept any key; the openai client refuses to start without one.
PLACEHOLDER_KEY = "EMPTY"
# Read timeout without an explicit one: this base plus max_tokens at this pace (a 2-core CPU server serving
# four requests writes ~8 tokens/s each); max_tokens=4096 waits ~9 minutes, max_tokens=512 ~94 s.
READ_TIMEOUT_BASE = 30.0
MIN_TOKENS_PER_SECOND = 8.0
DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    api_key_env: str = DEFAULT_KEY_ENV
    concurrency: int = 16
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout: float | None = None  # read timeout in seconds; None: from each request's max_tokens (read_timeout)
    connect_timeout: float = 10.0  # an endpoint that does not accept a connection in this long is down
    breaker_failures: int = DEFAULT_FAILURES  # consecutive connection-level failures that stop the client
    max_retries: int = 5
    backoff_base: float = 1.0  # seconds; attempt n waits up to base * 2**n (full jitter)
    backoff_max: float = 60.0
    max_requests: int | None = None  # budget: HTTP requests sent (retries included); cache hits are free
    max_total_tokens: int | None = None  # budget: prompt + completion tokens
    cache_path: Path | None = None  # sqlite file; None = no cache
    # eval scores what the model wrote within max_tokens, so a cut-off answer is a result worth keeping;
    # synthesis wants whole answers and asks again
    cache_truncated: bool = False
    json_retries: int = 2  # extra requests when an answer fails to parse/validate

    def api_key(self) -> str:
        return os.environ.get(self.api_key_env) or PLACEHOLDER_KEY

    def read_timeout(self, params: dict) -> float:
        """Seconds to wait for an answer: the configured timeout, else long enough for ``max_tokens`` at a
        slow CPU server's pace (a non-streamed answer sends nothing until it is complete)."""
        if self.timeout:
            return self.timeout
        max_tokens = params.get("max_tokens") or params.get("max_completion_tokens") or DEFAULT_MAX_TOKENS
        return READ_TIMEOUT_BASE + int(max_tokens) / MIN_TOKENS_PER_SECOND

    def share(self, parts: int) -> "LLMConfig":
        """This config for one of ``parts`` clients running at once (processes of a cluster): concurrency and
        rate limits divided, so the endpoint sees the load one client with this config would put on it."""
        if parts <= 1:
            return self
        per = lambda rate: None if rate is None else rate / parts  # noqa: E731
        return replace(self, concurrency=max(1, self.concurrency // parts),
                       requests_per_minute=per(self.requests_per_minute),
                       tokens_per_minute=per(self.tokens_per_minute))

    def __repr__(self) -> str:  # the key is not a field, but say so for anyone printing a config
        return f"LLMConfig(base_url={self.base_url!r}, model={self.model!r}, key from ${self.api_key_env})"


LOCAL = "local"  # the embedded llama.cpp model (curate.llm.local): the default when nothing else is set
OFF = ("off", "none")  # no model: stages that need one leave their rows pending
LOCAL_TIMEOUT = 1800.0  # seconds per request on the embedded model: 1,000 tokens at ~1 token/s on a loaded machine


def resolve_endpoint(base_url: str | None) -> str | None:
    """The endpoint from the option, else $OPENAI_BASE_URL, else the embedded model ("local");
    None when switched off (``off``)."""
    value = (base_url or os.environ.get(BASE_URL_ENV) or LOCAL).strip()
    return None if value.lower() in OFF else value


class LLMOptions(StageOptions):
    """Endpoint and client options shared by every stage that calls an OpenAI-compatible API."""

    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1; "
                                 f"'local' = the embedded llama.cpp model, 'off' = no model calls (default: "
                                 f"${BASE_URL_ENV}, else local).")
    model: str | None = Field(None, description=f"Model name at the endpoint (default: ${MODEL_ENV}).")
    api_key_env: str = Field(DEFAULT_KEY_ENV, description="Name of the environment variable holding the API key "
                             "(the key itself is never a config value).")
    concurrency: int = Field(16, ge=1, le=1024, description="Requests in flight at once.")
    requests_per_minute: float | None = Field(None, gt=0, description="Rate limit: requests per minute.")
    tokens_per_minute: float | None = Field(None, gt=0, description="Rate limit: tokens per minute (estimated "
                                            "before sending: prompt + max_tokens).")
    timeout: float | None = Field(None, gt=0, description="Seconds to wait for an answer before it is retried "
                                  "(default: 30 s plus max_tokens at 8 tokens/s). Connecting times out after 10 s.")
    max_retries: int = Field(5, ge=0, description="Retries on 429/5xx/timeouts/dropped connections.")
    backoff_base: float = Field(1.0, ge=0, description="First retry waits up to this many seconds; doubles each time.")
    max_requests: int | None = Field(None, ge=0, description="Budget: stop after this many requests "
                                     "(the rest stays pending; re-run to resume).")
    max_total_tokens: int | None = Field(None, ge=0, description="Budget: stop after this many tokens.")
    cache: bool = Field(True, description="Cache answers in <work dir>/llm.sqlite so re-runs make no repeated requests.")

    def endpoint(self) -> str | None:
        return resolve_endpoint(self.base_url)

    def run_fingerprint(self) -> dict[str, str | None]:
        """What decides the output besides the options: the endpoint (credentials redacted) and the model,
        also when they come from the environment. The key never: a new key gives the same answers."""
        endpoint = self.endpoint()
        model = self.resolved_model()
        if endpoint == LOCAL:  # the embedded model's name and version decide its answers
            from curate.llm.local.model import DEFAULT_MODEL

            model = model or DEFAULT_MODEL.name
        return {"endpoint": redact_url(endpoint) if endpoint else None, "model": model}

    def is_local(self) -> bool:
        return self.endpoint() == LOCAL

    def uses_llm(self) -> bool:
        """Whether the stage calls a model with these options (the runner starts the embedded one for it)."""
        return self.endpoint() is not None

    def resolved_model(self) -> str | None:
        return self.model or os.environ.get(MODEL_ENV) or None

    def llm_config(self, work_dir: Path | None, **overrides) -> LLMConfig:
        base_url = self.endpoint()
        model = self.resolved_model()
        api_key_env, concurrency, timeout = self.api_key_env, self.concurrency, self.timeout
        if base_url == LOCAL:  # started by the run (or `curate llm start`); its slots bound the concurrency
            from curate.llm.local.endpoint import KEY_ENV, local_server

            server = local_server()
            base_url, model, api_key_env = server.base_url, server.model, KEY_ENV
            concurrency = min(concurrency, server.slots)
            if "timeout" not in self.model_fields_set:  # a busy laptop answers slowly; a dead server is noticed anyway
                timeout = LOCAL_TIMEOUT
        if not base_url:
            raise UsageError(f"no endpoint: set base_url or ${BASE_URL_ENV}")
        if not model:
            raise UsageError(f"no model: set model or ${MODEL_ENV}")
        values = dict(
            base_url=base_url, model=model, api_key_env=api_key_env, concurrency=concurrency,
            requests_per_minute=self.requests_per_minute, tokens_per_minute=self.tokens_per_minute,
            timeout=timeout, max_retries=self.max_retries, backoff_base=self.backoff_base,
            max_requests=self.max_requests, max_total_tokens=self.max_total_tokens,
            cache_path=(Path(work_dir) / "llm.sqlite") if (self.cache and work_dir is not None) else None,
        )
        values.update(overrides)
        return LLMConfig(**values)
