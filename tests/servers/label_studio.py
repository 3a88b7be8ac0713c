"""A real Label Studio server on 127.0.0.1, in its own virtual environment.

Label Studio pins ``openai<2`` and ``pyarrow<25``: it would downgrade curate's own dependencies, so it lives
in a separate venv (``CURATE_LS_VENV``, default ``.venv/label-studio``: a venv of its own, kept inside the ignored .venv folder) with a pinned version.

    python -m tests.servers.label_studio install      # make label-studio-env (idempotent)
    python -m tests.servers.label_studio serve        # make label-studio: a server for reviewers, data in ./.label-studio

Tests use ``LabelStudioServer``: a temporary data dir, a free port, a test admin with a legacy API token,
``start()`` waits for ``GET /health``; ``stop()`` ends the process group it started (by its process id);
``restart()`` comes back on the same data dir and port (for the stop-mid-push test).
"""
from __future__ import annotations

import argparse
import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

LS_VERSION = "1.23.2"
CONSTRAINTS = Path(__file__).with_name("label-studio-constraints.txt")  # the versions it was tested with
REPO = Path(__file__).resolve().parents[2]
TEST_USER = "curate-admin@example.com"
_STAMP = ".curate-installed"
_DB = "label_studio.sqlite3"


def venv_path() -> Path:
    return Path(os.environ.get("CURATE_LS_VENV") or REPO / ".venv" / "label-studio")


def executable(venv: Path | None = None) -> Path:
    return (venv or venv_path()) / "bin" / "label-studio"


def template_dir(venv: Path | None = None) -> Path:
    return (venv or venv_path()) / "curate-template-data"


def installed(venv: Path | None = None) -> bool:
    """True when the pinned version finished installing (a stamp written after pip and the template)."""
    venv = venv or venv_path()
    stamp = venv / _STAMP
    return (executable(venv).exists() and (template_dir(venv) / _DB).exists() and stamp.exists()
            and stamp.read_text().strip() == LS_VERSION)


def build_template(venv: Path | None = None) -> Path:
    """An empty, fully migrated database: a new server copies it and starts in ~5 s instead of ~45 s of
    migrations. It holds no user and no token (those are created at each server's first start)."""
    venv = venv or venv_path()
    target = template_dir(venv)
    shutil.rmtree(target, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="curate-ls-template-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_"))}
        env["LABEL_STUDIO_BASE_DATA_DIR"] = str(work)
        # any command runs the migrations first; `version` then just prints and exits
        subprocess.run([str(executable(venv)), "version"], env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cwd=work)
        target.mkdir(parents=True)
        shutil.copy2(work / _DB, target / _DB)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def install(venv: Path | None = None, python: str | None = None) -> Path:
    """Create the venv and install the pinned Label Studio; a no-op when it is already there."""
    venv = venv or venv_path()
    if installed(venv):
        print(f"Label Studio {LS_VERSION} already installed in {venv}")
        return venv
    if not (venv / "bin" / "python").exists():
        # the base interpreter, not curate's venv: a venv made from a venv still works, but be explicit
        base = python or getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    (venv / _STAMP).unlink(missing_ok=True)
    if not list(venv.glob(f"lib/python*/site-packages/label_studio-{LS_VERSION}.dist-info")):
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        print(f"Installing label-studio=={LS_VERSION} into {venv} (about 1 GB, a minute or two)...", flush=True)
        subprocess.run(pip + ["--upgrade", "pip"], check=True)
        # Label Studio's own requirements are open-ended; a new release of one broke it once (sentry-sdk 3.0.0)
        subprocess.run(pip + ["-c", str(CONSTRAINTS), f"label-studio=={LS_VERSION}"], check=True)
    print("Preparing an empty migrated database (about 45 s, once)...", flush=True)
    build_template(venv)
    (venv / _STAMP).write_text(LS_VERSION + "\n")
    return venv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabelStudioError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM it when the process that started it dies, so a killed test
    run cannot leave a server behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


class LabelStudioServer:
    """One Label Studio process group; ``url`` and ``token`` are what a client needs."""

    def __init__(self, data_dir: Path | None = None, port: int | None = None, *, username: str = TEST_USER,
                 password: str | None = None, token: str | None = None, venv: Path | None = None,
                 startup_timeout: float = 180.0):
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="curate-ls-"))
        self.port = port or free_port()
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        # legacy tokens are 40 characters at most in Label Studio's table
        self.token = token or secrets.token_hex(20)
        self.venv = venv or venv_path()
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_"))}
        env.update({
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
            "LABEL_STUDIO_USERNAME": self.username,
            "LABEL_STUDIO_PASSWORD": self.password,
            "LABEL_STUDIO_USER_TOKEN": self.token,
            # without this at the first start the fixed token gets 401 (LS 1.23 prefers personal access tokens)
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "LABEL_STUDIO_HOST": self.url,
            "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def start(self) -> "LabelStudioServer":
        if self.proc is not None and self.proc.poll() is None:
            return self
        if not executable(self.venv).exists():
            raise LabelStudioError(f"Label Studio is not installed in {self.venv}: run `make label-studio-env`")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        seed = template_dir(self.venv) / _DB
        if not (self.data_dir / _DB).exists() and seed.exists():
            shutil.copy2(seed, self.data_dir / _DB)
        log = open(self.log_path, "ab")
        cmd = [str(executable(self.venv)), "start", "--no-browser", "--internal-host", "127.0.0.1",
               "-p", str(self.port), "--data-dir", str(self.data_dir)]
        # own session = own process group, so stop() reaches the workers it forks by this pid
        self.proc = subprocess.Popen(cmd, env=self._env(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.data_dir,
                                     preexec_fn=_die_with_parent)
        log.close()
        atexit.register(self.stop)  # never leave a server behind when the interpreter exits
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabelStudioError(f"Label Studio exited with {self.proc.returncode}:\n{self._log_tail()}")
            if self.healthy():
                return
            time.sleep(0.5)
        raise LabelStudioError(f"Label Studio did not answer /health within {self.startup_timeout:.0f}s:\n"
                               f"{self._log_tail()}")

    def _log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0, kill: bool = False) -> None:
        """SIGTERM the process group started by start() (pgid = its pid), SIGKILL what remains.
        ``kill=True`` sends SIGKILL at once (a crash, for the interrupted-push test)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        steps = [(signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)]
        for sig, wait in steps[1:] if kill else steps:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; make sure no child of the group lingers either
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        if proc.poll() is None:
            proc.wait(5)

    def add_user(self, email: str, password: str | None = None) -> str:
        """A second (third...) user in the admin's organization, made through the HTTP API like a person would:
        the admin asks for an invite link, the user signs up with it and reads their token. Returns the token."""
        import re

        import httpx

        admin = {"Authorization": f"Token {self.token}"}
        invite = httpx.get(self.url + "/api/invite", headers=admin, timeout=30)
        invite.raise_for_status()
        link = invite.json()["invite_url"]
        password = password or secrets.token_urlsafe(12)
        with httpx.Client(base_url=self.url, follow_redirects=True, timeout=30) as web:
            web.get(link).raise_for_status()
            token = re.search(r"token=([^&]+)", link).group(1)
            web.post(f"/user/signup/?token={token}", headers={"Referer": self.url + link},
                     data={"email": email, "password": password,
                           "csrfmiddlewaretoken": web.cookies.get("csrftoken")}).raise_for_status()
            answer = web.get("/api/current-user/token")
            if answer.status_code != 200:
                raise LabelStudioError(f"sign-up of {email} failed: {answer.status_code} {answer.text[:200]}")
            return answer.json()["token"]

    def web_session(self) -> str:
        """Log the admin in through the login form; returns the ``sessionid`` cookie (for a browser)."""
        import httpx

        with httpx.Client(base_url=self.url, follow_redirects=True, timeout=30) as web:
            web.get("/user/login/").raise_for_status()
            web.post("/user/login/", headers={"Referer": self.url + "/user/login/"},
                     data={"email": self.username, "password": self.password,
                           "csrfmiddlewaretoken": web.cookies.get("csrftoken")}).raise_for_status()
            session = web.cookies.get("sessionid")
        if not session:
            raise LabelStudioError(f"login of {self.username} failed")
        return session

    def restart(self) -> "LabelStudioServer":
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "LabelStudioServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


def serve(data_dir: Path, port: int) -> int:
    """Foreground server for reviewers. The token is never written to a file by curate: it comes from
    LABEL_STUDIO_API_KEY or is generated and shown once (Label Studio itself keeps it in its database)."""
    install()
    data_dir = data_dir.resolve()
    first_start = not (data_dir / _DB).exists()
    token = os.environ.get("LABEL_STUDIO_API_KEY")
    generated = token is None and first_start
    if generated:
        token = secrets.token_hex(20)
    username = os.environ.get("LABEL_STUDIO_USERNAME", "admin@localhost.local")
    password = os.environ.get("LABEL_STUDIO_PASSWORD") or (secrets.token_urlsafe(12) if first_start else None)
    server = LabelStudioServer(data_dir, port, username=username, password=password, token=token,
                               startup_timeout=300)
    print(f"Starting Label Studio {LS_VERSION} (data in {data_dir}); the first start takes about 30 s...", flush=True)
    server.start()
    print(f"\nLabel Studio is running at {server.url}")
    if first_start:
        print(f"  log in as {username} / {'(LABEL_STUDIO_PASSWORD)' if 'LABEL_STUDIO_PASSWORD' in os.environ else password}")
    print("\nIn another terminal:")
    print(f"  export LABEL_STUDIO_URL={server.url}")
    if generated:
        print(f"  export LABEL_STUDIO_API_KEY={token}    # shown once, not saved anywhere by curate")
    elif first_start:
        print("  export LABEL_STUDIO_API_KEY=...        # the token you set in LABEL_STUDIO_API_KEY")
    else:
        print("  export LABEL_STUDIO_API_KEY=...        # the token shown at the first start, or a personal access")
        print("                                         # token from Account & Settings in the web UI")
    print("  curate review push --in <records> --project <name>\n\nCtrl-C stops the server.", flush=True)
    try:
        while server.proc is not None and server.proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.label_studio", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help=f"install label-studio=={LS_VERSION} into its own venv ({venv_path()})")
    p_serve = sub.add_parser("serve", help="start a local server for reviewers")
    p_serve.add_argument("--data-dir", type=Path, default=Path(".label-studio"))
    p_serve.add_argument("--port", type=int, default=int(os.environ.get("LABEL_STUDIO_PORT", "8080")))
    args = parser.parse_args(argv)
    if args.cmd == "install":
        install()
        return 0
    return serve(args.data_dir, args.port)


if __name__ == "__main__":
    sys.exit(main())
