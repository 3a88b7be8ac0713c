"""``curate llm``: the embedded model as a service: prepare, start, status, env, stop.

Registered in curate/cli.py (built on first use); each command is a thin wrapper over curate.llm.local.
"""
from __future__ import annotations

import json
import shlex
import sys

import click

from curate.commands.common import handle_errors
from curate.llm.local.endpoint import STATE_NAME, launch, prepare, running_server, state_path
from curate.llm.local.model import DEFAULT_MODEL
from curate.llm.local.paths import CACHE_ENV, cache_root, state_dir
from curate.llm.local.server import healthy, stop_pid, write_state


def _log(message: str) -> None:
    click.echo(message, err=True)


@click.group("llm")
def llm_group() -> None:
    """The embedded model (Qwen2.5-Coder-1.5B-Instruct on llama.cpp, 127.0.0.1 only).

    Pipelines start and stop it themselves when no endpoint is set; these commands run one server that
    stays up between runs (runs and `curate eval` reuse it). Model and runtime live in $CURATE_CACHE_DIR
    (default ~/.cache/curate).
    """


@llm_group.command("prepare")
@handle_errors
def prepare_command() -> None:
    """Fetch and verify the model, find or build llama-server (what `make llm` runs)."""
    binary, model = prepare(log=_log)
    click.echo(f"runtime: {binary}\nmodel:   {model}")


@llm_group.command("start")
@handle_errors
def start_command() -> None:
    """Start the embedded model in the background and print its base URL."""
    current = running_server()
    if current is not None:
        _log(f"already running (PID {current.pid})")
        click.echo(current.base_url)
        return
    info = launch(detached=True, log=_log, log_path=state_dir() / f"{STATE_NAME}.log")
    write_state(state_path(), info)
    _log("use it from a shell with: eval \"$(curate llm env)\"; stop it with: curate llm stop")
    click.echo(info.base_url)


@llm_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON (without the key).")
@handle_errors
def status_command(as_json: bool) -> None:
    """PID, port, model and health of the embedded model started by `curate llm start` (exit 1: not running)."""
    info = running_server()
    if info is None:
        click.echo("not running" if not as_json else json.dumps({"running": False}))
        sys.exit(1)
    state = {"running": True, "healthy": healthy(info.port), **info.public()}
    if as_json:
        click.echo(json.dumps(state))
        return
    click.echo(f"running: PID {info.pid}, {info.base_url}, model {info.model}, {info.slots} slots, "
               f"{'healthy' if state['healthy'] else 'NOT answering /health'} (log {info.log_path})")


@llm_group.command("env")
@handle_errors
def env_command() -> None:
    """Shell exports that point the openai client (and curate) at the running embedded model."""
    info = running_server()
    if info is None:
        raise click.ClickException("the embedded model is not running: start it with `curate llm start`")
    for name, value in (("OPENAI_BASE_URL", info.base_url), ("OPENAI_MODEL", info.model),
                        ("OPENAI_API_KEY", info.api_key)):
        click.echo(f"export {name}={shlex.quote(value)}")


@llm_group.command("stop")
@handle_errors
def stop_command() -> None:
    """Stop the embedded model started by `curate llm start` (by its PID)."""
    info = running_server()
    path = state_path()
    if info is None:
        path.unlink(missing_ok=True)  # a stale state file of a server that is gone
        click.echo("not running")
        return
    stop_pid(info.pid)
    path.unlink(missing_ok=True)
    click.echo(f"stopped (PID {info.pid})")


@llm_group.command("info")
@handle_errors
def info_command() -> None:
    """The default model, its licence and hash, and where the cache is."""
    m = DEFAULT_MODEL
    click.echo(f"model:   {m.name} ({m.upstream}, {m.license})\nsha256:  {m.sha256}\nfile:    {m.path} "
               f"({'present' if m.path.is_file() else 'not fetched yet'})\ncache:   {cache_root()} (${CACHE_ENV})")
