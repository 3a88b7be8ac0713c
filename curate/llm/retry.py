"""Which failures are worth another try, and how long to wait before it.

Transient: 408/409/429/5xx, timeouts, refused/reset/dropped connections. Everything else (400 bad
request, 401/403 auth, 404 unknown model) fails at once: retrying cannot fix it. Waits follow
exponential backoff with full jitter, and never undercut the server's ``Retry-After``.
"""
from __future__ import annotations

import email.utils
import random
import time

import openai

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUS or exc.status_code >= 500
    return False


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``Retry-After`` as seconds or HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, base: float, cap: float, server_wait: float | None = None,
                  rng: random.Random | None = None) -> float:
    """Wait before retry number ``attempt`` (0-based): full jitter, at least what the server asked for."""
    rng = rng or random
    delay = rng.uniform(0, min(cap, base * (2 ** attempt)))
    if server_wait is not None:
        delay = max(delay, min(server_wait, cap))
    return delay


def describe(exc: BaseException) -> str:
    """A one-line error for meta/logs; never includes request headers (where the key lives)."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {type(exc).__name__}"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        return f"connection error ({type(cause).__name__})" if cause else "connection error"
    return f"{type(exc).__name__}: {str(exc)[:200]}"
