"""A circuit breaker for an endpoint that is down: stop asking once it has failed at the connection level
several times in a row, instead of retrying every row for minutes and then dropping it.

Only failures of the endpoint itself count (refused or dropped connections, timeouts); any HTTP answer,
even an error status, proves the endpoint is there and closes the count. Once open it stays open for the
client's lifetime: the stage stops, its rows stay pending, and the next run tries again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import openai

from curate.store import redact_url

# Consecutive connection-level failures that open the breaker: a dead endpoint opens it in the first wave of
# requests, while a flaky one (the chaos server drops ~7% of connections) practically never does.
DEFAULT_FAILURES = 6


def is_connection_failure(exc: BaseException) -> bool:
    """The endpoint did not answer at all (APITimeoutError is a subclass of APIConnectionError)."""
    return isinstance(exc, openai.APIConnectionError)


class EndpointUnreachable(RuntimeError):
    """The breaker opened: the stage cannot go on without the endpoint."""


@dataclass
class CircuitBreaker:
    failures_to_open: int = DEFAULT_FAILURES
    consecutive: int = 0
    last_error: str | None = None
    open: bool = False

    def success(self) -> None:
        if not self.open:
            self.consecutive = 0

    def failure(self, error: str) -> bool:
        """Count one connection-level failure; True when this opens (or the breaker already was open)."""
        self.consecutive += 1
        self.last_error = error
        if self.failures_to_open and self.consecutive >= self.failures_to_open:
            self.open = True
        return self.open

    def describe(self, endpoint: str) -> str:
        return (f"endpoint {endpoint} unreachable: {self.consecutive} consecutive connection failures "
                f"(last: {self.last_error})")


def raise_if_unreachable(outcomes: Iterable, endpoint: str, pending: str) -> None:
    """Stop the stage with one line when the breaker gave up on any request; ``pending`` says what waits."""
    given_up = [o for o in outcomes if o.status == "unreachable"]
    if given_up:
        raise EndpointUnreachable(f"endpoint {redact_url(endpoint)} stopped answering (last error: "
                                  f"{given_up[0].error}); {pending} stay pending: run again when it answers "
                                  "(answers received so far are cached)")
