"""The connection to Label Studio (label-studio-sdk 2.x), with one clear error for the problems users can fix.

``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` come from the environment only. The key may be a legacy
token or a personal access token (a JWT refresh token: the SDK exchanges it for short-lived access tokens).
``connect()`` checks the server and the key before anything else runs, so a down server or a wrong key
stops the command before any file or task is touched.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterator, TypeVar

import httpx

from curate.errors import RunFailed

URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"
T = TypeVar("T")


class ReviewError(RunFailed):
    """Label Studio cannot be used (down, wrong key, refused request): one line, no traceback."""


def _api_error_types() -> tuple[type[BaseException], ...]:
    from label_studio_sdk.core.api_error import ApiError

    return (ApiError,)


def explain(exc: BaseException, url: str) -> ReviewError:
    """One line saying what went wrong and what to do; never includes the key."""
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(exc, ApiError):
        status = exc.status_code
        if status in (401, 403):
            return ReviewError(f"Label Studio at {url} refused the API key ({status}): check {KEY_ENV} "
                               "(a legacy token or a personal access token from Account & Settings)")
        body = exc.body
        detail = body.get("validation_errors") or body.get("detail") if isinstance(body, dict) else body
        return ReviewError(f"Label Studio at {url} answered {status}: {json.dumps(detail, default=str)[:300]}")
    if isinstance(exc, (httpx.TransportError, OSError)):
        return ReviewError(f"Label Studio is not reachable at {url} ({type(exc).__name__}): start it "
                           f"(`make label-studio`) or fix {URL_ENV}")
    return ReviewError(f"Label Studio at {url}: {type(exc).__name__}: {exc}")


class Client:
    """A checked SDK client; ``call(fn)`` turns SDK and network failures into ``ReviewError``."""

    def __init__(self, url: str, api_key: str, timeout: float = 60.0):
        from label_studio_sdk.client import LabelStudio

        self.url = url.rstrip("/")
        try:
            # retries stay off: a retried import could land twice; push is idempotent on the next run instead
            self.ls = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout, max_retries=0)
        except _api_error_types() as exc:  # an expired personal access token fails here already
            raise explain(exc, self.url) from None

    def call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ReviewError:
            raise
        except (httpx.HTTPError, OSError, *_api_error_types()) as exc:
            raise explain(exc, self.url) from None

    def check(self) -> dict[str, Any]:
        """Who the key belongs to (proves the server is up and the key is good)."""
        me = self.call(self.ls.users.whoami)
        return {"id": me.id, "email": me.email}

    def iterate(self, pager_fn: Callable[[], Any]) -> Iterator[Any]:
        """Iterate an SDK pager, fetching pages through ``call`` (pages are fetched lazily)."""
        it = self.call(lambda: iter(pager_fn()))
        while True:
            try:
                item = self.call(lambda: next(it))
            except StopIteration:
                return
            yield item


def configured() -> bool:
    return bool(os.environ.get(URL_ENV))


def connect(url: str | None = None, api_key: str | None = None) -> Client:
    """A client checked against the server; ``ReviewError`` when the URL or key is missing or wrong."""
    url = url or os.environ.get(URL_ENV)
    api_key = api_key or os.environ.get(KEY_ENV)
    if not url:
        raise ReviewError(f"{URL_ENV} is not set: point it at your Label Studio (e.g. http://127.0.0.1:8080; "
                          "`make label-studio` starts one)")
    if not api_key:
        raise ReviewError(f"{KEY_ENV} is not set: use the token shown by `make label-studio` or a personal "
                          "access token from Label Studio's Account & Settings")
    client = Client(url, api_key)
    client.check()
    return client
