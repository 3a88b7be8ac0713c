"""Start, check and stop one llama-server on 127.0.0.1: a free port, a per-server API key, stopped by PID.

A server started for a run dies with the run: it is stopped in a ``finally`` (also on Ctrl-C), and on
Linux the kernel sends it SIGKILL if the run itself is killed (``PR_SET_PDEATHSIG``), so no orphan is
left even after ``kill -9``. A server started by ``curate llm start`` is detached (its own session) and
lives until ``curate llm stop``; its state (PID, port, model, key) is a 0600 file in the user cache.
"""
from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from curate.llm.local.errors import LocalModelError

DEFAULT_SLOTS = 4  # parallel sequences (-np): ~34 tok/s over 4 vs ~15 tok/s for one on 2 cores
DEFAULT_CONTEXT = 16384  # shared by the slots: 4096 tokens each
HOST = "127.0.0.1"


@dataclass
class ServerInfo:
    pid: int
    port: int
    model: str  # the name requests use (llama-server's alias)
    model_path: str
    binary: str
    slots: int
    api_key: str
    log_path: str
    started: float

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def public(self) -> dict:
        """What may be printed or logged: everything but the key."""
        return {k: v for k, v in asdict(self).items() if k != "api_key"} | {"base_url": self.base_url}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(binary: Path, model_path: Path, model_name: str, *, log_path: Path, slots: int = DEFAULT_SLOTS,
                 context: int = DEFAULT_CONTEXT, threads: int | None = None, detached: bool = False,
                 timeout: float = 180.0, extra_args: tuple[str, ...] = ()) -> ServerInfo:
    """Start llama-server and wait until ``/health`` answers 200; on any failure it is stopped again.
    ``extra_args``: more llama-server flags (``--embeddings``: a server that only embeds)."""
    key = secrets.token_urlsafe(24)
    port = free_port()
    cmd = [str(binary), "-m", str(model_path), "-a", model_name, "--host", HOST, "--port", str(port),
           "-t", str(threads or os.cpu_count() or 2), "-np", str(slots), "-c", str(context), "--api-key", key,
           *extra_args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=detached, preexec_fn=None if detached else _die_with_parent)
    info = ServerInfo(pid=proc.pid, port=port, model=model_name, model_path=str(model_path), binary=str(binary),
                      slots=slots, api_key=key, log_path=str(log_path), started=time.time())
    try:
        _wait_healthy(proc, info, timeout)
    except BaseException:
        stop_pid(proc.pid)
        raise
    return info


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the finally/signal handlers of the run still stop it


def _wait_healthy(proc: subprocess.Popen, info: ServerInfo, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalModelError(f"llama-server exited with code {proc.returncode} while starting: "
                                  f"{log_tail(Path(info.log_path))}")
        if healthy(info.port):
            return
        time.sleep(0.25)
    raise LocalModelError(f"llama-server did not become healthy within {timeout:.0f} s (log: {info.log_path})")


def healthy(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def is_our_server(pid: int, binary: str | None = None) -> bool:
    """The PID is alive and is a llama-server (not a recycled PID of some other program)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (not Linux): alive is the best we can tell
    exe = cmdline[0].decode(errors="replace") if cmdline else ""
    return bool(exe) and (exe == binary if binary else exe.endswith("llama-server"))


def stop_pid(pid: int, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reap it if it is our child. True if it was running."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _reap(pid)
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if _reap(pid):
            return True
        if not _alive(pid):  # exited; if it is our child its zombie is reaped below
            break
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:  # our child: wait until it is gone (SIGKILL cannot be ignored), so no zombie stays behind
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    return True


def _reap(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of another parent counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


# -- state of a detached server (curate llm start) ---------------------------------------------------

def write_state(path: Path, info: ServerInfo) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the key: owner only
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(info), fh)
    os.replace(tmp, path)


def read_state(path: Path) -> ServerInfo | None:
    try:
        return ServerInfo(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
