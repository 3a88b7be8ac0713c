"""The embedded endpoint as stages see it: ``base_url: local`` resolves to a running llama-server.

A pipeline run opens one ``LocalSession``: the server starts the first time a stage asks for the local
endpoint (a run whose model stages are all skipped never starts it), and stops when the runner closes
the session after the last stage that needs a model, also on failure and Ctrl-C. Outside a run, the
server of ``curate llm start`` is used when one is up.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from curate.llm.local.errors import LocalModelError
from curate.progress import Progress
from curate.llm.local.model import DEFAULT_MODEL, ModelSpec, ensure_model
from curate.llm.local.paths import state_dir
from curate.llm.local.runtime import ensure_server
from curate.llm.local.server import ServerInfo, is_our_server, read_state, start_server, stop_pid

LOCAL = "local"  # the base_url value that means "the embedded model"
KEY_ENV = "CURATE_LOCAL_API_KEY"  # the per-server key lives in this process's environment only
STATE_NAME = "default"


def state_path(name: str = STATE_NAME) -> Path:
    return state_dir() / f"{name}.json"


def running_server(name: str = STATE_NAME) -> ServerInfo | None:
    """The detached server of ``curate llm start`` when it is alive, else None."""
    info = read_state(state_path(name))
    if info is None or not is_our_server(info.pid, info.binary):
        return None
    return info


class _BuildProgress:
    """Feeds the build's (done, total) steps to curate's progress display (a bar on a terminal, lines elsewhere)."""

    def __init__(self):
        self.bar: Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = Progress(total, "building llama-server", unit="step").__enter__()
        self.bar.advance(done - self.bar.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def prepare(spec: ModelSpec = DEFAULT_MODEL, log: Callable[[str], None] = print) -> tuple[Path, Path]:
    """(runtime binary, model file): found in the cache or fetched/built now, timed in the log."""
    started = time.monotonic()
    progress = _BuildProgress()
    try:
        binary = ensure_server(log=log, progress=progress)
    finally:
        progress.close()
    built = time.monotonic()
    model = ensure_model(spec, log=log)
    done = time.monotonic()
    if done - started > 5:
        log(f"[llm] runtime ready in {built - started:.0f} s, model in {done - built:.0f} s")
    return binary, model


def launch(spec: ModelSpec = DEFAULT_MODEL, *, detached: bool, log: Callable[[str], None] = print,
           log_path: Path | None = None) -> ServerInfo:
    binary, model = prepare(spec, log=log)
    started = time.monotonic()
    if log_path is None:
        log_path = state_dir() / f"run-{os.getpid()}.log"
    info = start_server(binary, model, spec.name, log_path=log_path, detached=detached)
    log(f"[llm] embedded model {spec.name} serving at {info.base_url} (PID {info.pid}, {info.slots} slots, "
        f"ready in {time.monotonic() - started:.1f} s)")
    return info


class LocalSession:
    """``with LocalSession(log) as session:`` ... ``session.server()`` starts on first use; exit stops it."""

    _current: "LocalSession | None" = None  # the open session of this process (one run at a time)

    def __init__(self, log: Callable[[str], None] = print):
        self.log = log
        self.info: ServerInfo | None = None
        self.owned = False  # True: we started it, so we stop it

    def __enter__(self) -> "LocalSession":
        LocalSession._current = self
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        if LocalSession._current is self:
            LocalSession._current = None

    def server(self) -> ServerInfo:
        if self.info is not None and is_our_server(self.info.pid, self.info.binary):
            return self.info
        if self.info is not None and self.owned:  # it died under us (killed, crashed): start a new one
            self.log(f"[llm] the embedded server (PID {self.info.pid}) is gone; starting a new one")
            stop_pid(self.info.pid, grace=0)
            self.info = None
        shared = running_server()
        if shared is not None:
            self.log(f"[llm] using the embedded model started by `curate llm start` at {shared.base_url}")
            self.info, self.owned = shared, False
        else:
            self.info, self.owned = launch(detached=False, log=self.log), True
        os.environ[KEY_ENV] = self.info.api_key
        return self.info

    def close(self) -> None:
        if self.info is not None and self.owned:
            stop_pid(self.info.pid)
            self.log(f"[llm] embedded server stopped (PID {self.info.pid})")
        if self.info is not None:
            os.environ.pop(KEY_ENV, None)
        self.info, self.owned = None, False


def restart_if_dead() -> bool:
    """Inside a run: when the server the run started is gone (killed, crashed), start a new one. True if it did."""
    session = LocalSession._current
    if session is None or session.info is None or not session.owned:
        return False
    if is_our_server(session.info.pid, session.info.binary):
        return False
    session.server()  # notices it is gone and starts a new one (new port, new key)
    return True


def local_server() -> ServerInfo:
    """The server a stage with ``base_url: local`` talks to (started lazily inside a run)."""
    if LocalSession._current is not None:
        return LocalSession._current.server()
    shared = running_server()
    if shared is None:
        raise LocalModelError("base_url is 'local' but the embedded model is not running: run the stage through "
                              "`curate run` (it starts and stops the model) or start it with `curate llm start`")
    os.environ[KEY_ENV] = shared.api_key
    return shared
