"""A circuit breaker for an endpoint that is down: stop asking once it has failed at the connection level
several times in a row, instead of retrying every row for minutes and then dropping it.

Only failures of the endpoint itself count: a refused or dropped connection or a timeout of a request during
which nothing else was answered either. When another request was answered meanwhile, the endpoint is alive
and the failure is the request's own (a very long answer, one dropped connection): the caller retries it
within the row's own budget. Any HTTP answer, even an error status, proves the endpoint is there and
resets the count. Once open the breaker stays open for the client's lifetime: the stage stops, its rows stay
pending, and the next run tries again. Counting "nothing answered meanwhile" instead of wall-clock windows
keeps bursts of errors on a busy but live server (keep-alive connections the server closed, 64 requests
in flight) from opening it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from curate.errors import RunFailed
from curate.store import redact_url

# Consecutive failures of the endpoint that open the breaker (a dead endpoint reaches it in the first wave of
# requests, or after a few retries of one request).
DEFAULT_FAILURES = 6


def is_connection_failure(exc: BaseException) -> bool:
    """The endpoint did not answer at all (APITimeoutError is a subclass of APIConnectionError)."""
    import openai  # here, not at the top: the options that import this module must not cost openai's 0.4 s

    return isinstance(exc, openai.APIConnectionError)


class EndpointUnreachable(RunFailed):
    """The breaker opened: the stage cannot go on without the endpoint."""


@dataclass
class CircuitBreaker:
    failures_to_open: int = DEFAULT_FAILURES
    consecutive: int = 0
    answers: int = 0  # HTTP answers so far: a request notes this when sent, to tell its failure's cause
    last_error: str | None = None
    open: bool = False

    def success(self) -> None:
        self.answers += 1
        if not self.open:
            self.consecutive = 0

    def failure(self, error: str, answers_when_sent: int) -> bool:
        """Count a connection-level failure of a request sent when ``answers`` was ``answers_when_sent``.

        True: the endpoint's fault (nothing was answered since; may open the breaker); False: the request's own.
        """
        if self.answers > answers_when_sent:
            return False
        self.consecutive += 1
        self.last_error = error
        if self.failures_to_open and self.consecutive >= self.failures_to_open:
            self.open = True
        return True


def raise_if_unreachable(outcomes: Iterable, endpoint: str, pending: str) -> None:
    """Stop the stage with one line when the breaker gave up on any request; ``pending`` says what waits."""
    given_up = [o for o in outcomes if o.status == "unreachable"]
    if given_up:
        raise EndpointUnreachable(f"endpoint {redact_url(endpoint)} stopped answering (last error: "
                                  f"{given_up[0].error}); {pending} stay pending: run again when it answers "
                                  "(answers received so far are cached)")
