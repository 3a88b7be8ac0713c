"""A synchronous facade for stages: stage code is plain functions over frames, the client is async."""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Coroutine, Iterable, TypeVar

from curate.llm.client import LLMClient, LLMStats, Outcome, Request
from curate.llm.config import LLMConfig

T = TypeVar("T")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion; works inside Jupyter (a loop already running) via a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="curate-llm")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_requests(config: LLMConfig, requests: Iterable[Request], *,
                 on_done: Callable[[int, Outcome], None] | None = None,
                 stats: LLMStats | None = None) -> tuple[list[Outcome], LLMStats]:
    """Send requests through one client; outcomes in input order, plus the counts of this call.

    Pass ``stats`` to keep counting into an existing LLMStats (several phases, one budget).
    """
    reqs = list(requests)

    async def go() -> tuple[list[Outcome], LLMStats]:
        async with LLMClient(config) as client:
            if stats is not None:
                client.stats = stats
            outcomes = await client.map(reqs, on_done)
            return outcomes, client.stats

    return run_sync(go)
