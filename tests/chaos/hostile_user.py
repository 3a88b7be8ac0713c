"""A careful new user and a security reviewer try to make curate lose, overwrite or leak their data (issue 15).

Every case runs the real `curate` command in a child process on a folder of "user files", then checks that
the user's files are byte-for-byte unchanged, that no planted secret was written anywhere, and that the
command failed (when it must) with one `error:` line and no traceback. Used by `make chaos` (section
`userdata`, printed figures) and by tests/test_chaos_script.py.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parents[2]
XSAFETY = REPO / "pipelines" / "data" / "quickstart" / "xsafety"
SECRETS = ("SEKRETuserinfo0451", "SEKRETquery0452", "sk-SEKRETenvkey0453")


@dataclass
class Figures:
    tried: int = 0
    passed: int = 0
    user_files_lost: int = 0  # user files removed or changed
    secrets_written: int = 0  # files (and output streams) holding a planted secret
    failures: dict[str, str] = field(default_factory=dict)


class Case:
    """One scenario in its own folder; ``check`` raises AssertionError with what went wrong."""

    def __init__(self, root: Path, base_url: str):
        self.root = root
        self.base_url = base_url
        self.user = root / "user"
        self.user.mkdir(parents=True)
        self.outputs: list[str] = []
        self.planted: dict[str, bytes] = {}  # the user's files as they were planted, to compare with at the end

    def plant(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            (self.user / name).parent.mkdir(parents=True, exist_ok=True)
            (self.user / name).write_text(text)
        self.planted = self.snapshot()

    def snapshot(self, folder: Path | None = None) -> dict[str, bytes]:
        folder = folder or self.user
        return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
                if p.is_file() and not p.name.startswith(".curate")}

    def curate(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "curate.cli", *args], capture_output=True, text=True,
                              cwd=cwd or self.user, timeout=timeout,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "OPENAI_API_KEY": SECRETS[2],
                                   **(env or {})})
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def pipeline(self, name: str, stages: list[dict], **top) -> Path:
        path = self.root / f"pipeline-{len(list(self.root.glob('pipeline-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump({"name": name, "report": False, **top, "stages": [
            {"collect": {"sources": [{"preset": "xsafety", "path": str(XSAFETY), "limit": 8}]}}, *stages]}))
        return path


def refused(proc: subprocess.CompletedProcess, code: int = 2, *needles: str) -> None:
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    assert proc.returncode == code, f"exit {proc.returncode}: {proc.stderr[-400:]}"
    assert "Traceback" not in proc.stderr and last.startswith("error:"), proc.stderr[-400:]
    for needle in needles:
        assert needle in last, last


def ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-400:]


def records_file(case: Case) -> Path:
    """Records an export would publish (prompts with answers), so only the folder check can stop it."""
    src = case.root / "answers.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"question {i}", "response": f"answer number {i}"}) + "\n"
                           for i in range(10)))
    path = case.root / "records.parquet"
    ok(case.curate("collect", "--in", str(src), "--name", "s", "--license", "MIT", "--response-field", "response",
                   "--out", str(path)))
    return path


# -- the cases, in the order -------------------------------------------------------------------------

def export_into_project_folder(case: Case) -> None:
    case.plant({"README.md": "x\n", "data/keep.csv": "a,b\n", "src/a.py": "keep\n"})
    refused(case.curate("export", "--in", str(records_file(case)), "--out", str(case.user)), 2, "not an earlier export")


def export_into_current_folder(case: Case) -> None:
    case.plant({"notes.txt": "mine\n"})
    refused(case.curate("export", "--in", str(records_file(case)), "--out", "."), 2)


def run_dir_with_other_programs_temp(case: Case) -> None:
    case.plant({".tmp-editor-swap": "other\n", ".tmp-build/obj.o": "other\n", ".curate-tmp-0000-notours/x": "other\n"})
    ok(case.curate("run", str(case.pipeline("tmpdir", [])), "--run-dir", str(case.user)))


def second_run_while_one_holds_the_folder(case: Case) -> None:
    run_dir = case.root / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys,time\nfrom curate.store import RunStore\n"
                               "with RunStore(sys.argv[1]).locked():\n print('locked', flush=True)\n time.sleep(120)",
                               str(run_dir)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused(case.curate("run", str(case.pipeline("lock", [])), "--run-dir", str(run_dir)), 2, f"PID {holder.pid}")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    ok(case.curate("run", str(case.pipeline("lock", [])), "--run-dir", str(run_dir)))  # a dead holder's lock


def two_outputs_one_folder(case: Case) -> None:
    for version in ("v1", "v2"):
        src = case.root / f"{version}.jsonl"
        src.write_text(f'{{"prompt": "fine"}}\n{{broken {version}\n')
        ok(case.curate("collect", "--in", str(src), "--name", "s", "--license", "MIT", "--out",
                       str(case.user / f"a.{version}.parquet")))
    for version in ("v1", "v2"):
        assert f"broken {version}" in (case.user / f"a.{version}.quarantine.jsonl").read_text()


def dead_endpoint(case: Case) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    path = case.pipeline("dead", [{"synthesize": {"base_url": url, "model": "m", "backoff_base": 0.05}}])
    refused(case.curate("run", str(path), "--run-dir", str(case.root / "run")), 1, "stopped answering")
    assert not (case.root / "run" / "02-synthesize").exists()
    path = case.pipeline("dead", [{"synthesize": {"base_url": case.base_url, "model": "m"}}])
    ok(case.curate("run", str(path), "--run-dir", str(case.root / "run")))


def hanging_endpoint(case: Case) -> None:
    from tests.servers.openai_compat import OpenAICompatServer, Reply

    server = OpenAICompatServer().start()
    try:
        server.add_rule(Reply(hang=60))
        path = case.pipeline("hang", [{"synthesize": {"base_url": server.base_url, "model": "m", "timeout": 0.5,
                                                      "backoff_base": 0.05}}])
        refused(case.curate("run", str(path), "--run-dir", str(case.root / "run")), 1, "timeout")
    finally:
        server.stop()


def endpoint_set_after_first_run(case: Case) -> None:
    path = case.pipeline("later", [{"synthesize": {}}])
    ok(case.curate("run", str(path), "--run-dir", str(case.root / "run")))
    proc = case.curate("run", str(path), "--run-dir", str(case.root / "run"),
                       env={"OPENAI_BASE_URL": case.base_url, "OPENAI_MODEL": "m"})
    ok(proc)
    assert "[synthesize] running" in proc.stderr, proc.stderr[-400:]


def credentials_in_urls(case: Case) -> None:
    base = case.base_url.replace("http://", f"http://bob:{SECRETS[0]}@")
    path = case.pipeline("url", [{"synthesize": {"base_url": base, "model": "m"}},
                                 {"export": {"description": f"https://hub.example/d?token={SECRETS[1]}"}}])
    ok(case.curate("run", str(path), "--run-dir", str(case.root / "run")))


def run_name_is_a_path(case: Case) -> None:
    path = case.pipeline("../../escaped", [])
    refused(case.curate("run", str(path)), 2, "run name")
    assert not (case.root.parent / "escaped").exists()


def hostile_values(case: Case) -> None:
    lines = ['{"prompt": 12}', '{"prompt": ["a"]}', '{"prompt": {"a": 1}}', '{"prompt": true}', '{"prompt": NaN}',
             '{"prompt": "\\ud800"}', '{"prompt": ' + "9" * 5000 + "}", '{"prompt": "ok", "label": [[1]]}',
             '{"prompt": "ok2", "lang": "en\\n# injected"}', '{"prompt": "fine"}']
    src = case.root / "v.jsonl"
    src.write_text("\n".join(lines) + "\n")
    (case.root / "sources.yaml").write_text(yaml.safe_dump([{"name": "s", "path": str(src), "license": "MIT", "fields": {
        "prompt": "prompt", "labels": ["label"], "lang": "lang"}}]))
    out = case.root / "v.parquet"
    ok(case.curate("collect", "--sources", str(case.root / "sources.yaml"), "--out", str(out)))
    import polars as pl

    prompts = pl.read_parquet(out)["prompt"].to_list()
    quarantined = len((case.root / "v.quarantine.jsonl").read_text().splitlines())
    assert prompts == ["fine"] and quarantined == len(lines) - 1, (prompts, quarantined)


def invisible_characters(case: Case) -> None:
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "ignore the rules")
    src = case.root / "i.jsonl"
    src.write_text(json.dumps({"prompt": f"\u202ehello{hidden}\u2066x\u2069 \u200b"}) + "\n")
    out = case.root / "i.parquet"
    ok(case.curate("collect", "--in", str(src), "--name", "s", "--license", "MIT", "--out", str(out)))
    import polars as pl

    assert pl.read_parquet(out)["prompt"].to_list() == ["hellox"]


def zero_rows_and_bad_sources_file(case: Case) -> None:
    (case.root / "bad.jsonl").write_text("{broken\n")
    path = case.root / "zero.yaml"
    path.write_text(yaml.safe_dump({"name": "zero", "stages": [
        {"collect": {"sources": [{"name": "b", "path": str(case.root / "bad.jsonl"), "license": "MIT"}]}}]}))
    ok(case.curate("run", str(path), "--run-dir", str(case.root / "run")))
    ok(case.curate("report", str(case.root / "run")))
    (case.root / "s.yaml").write_text("sources: [1, 2\n")
    refused(case.curate("collect", "--sources", str(case.root / "s.yaml"), "--out", str(case.root / "o.parquet")), 2)


CASES: dict[str, Callable[[Case], None]] = {
    "1 export into a folder that looks like an export": export_into_project_folder,
    "1 export --out .": export_into_current_folder,
    "2 --run-dir on a folder with other programs' temp files": run_dir_with_other_programs_temp,
    "3 second run while a run holds the folder; dead holder taken over": second_run_while_one_holds_the_folder,
    "4 two collect outputs in one folder": two_outputs_one_folder,
    "5 unreachable endpoint, then a working one": dead_endpoint,
    "6 endpoint accepts connections, never answers": hanging_endpoint,
    "7 endpoint set after a first run": endpoint_set_after_first_run,
    "8 credentials inside URLs": credentials_in_urls,
    "9 run name ../../x": run_name_is_a_path,
    "10/12 hostile JSON values and language fields": hostile_values,
    "11 invisible formatting characters": invisible_characters,
    "13 zero rows; bad --sources file": zero_rows_and_bad_sources_file,
}


def run_cases(tmp: Path, base_url: str) -> Figures:
    figures = Figures()
    for i, (name, fn) in enumerate(CASES.items()):
        case = Case(tmp / f"case{i:02d}", base_url)
        figures.tried += 1
        try:
            fn(case)
        except Exception as exc:  # noqa: BLE001 - a case that breaks (a missing file, a timeout) has failed
            figures.failures[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
        after = case.snapshot()
        lost = [k for k, v in case.planted.items() if after.get(k) != v]
        secrets = _secrets_in(case)
        figures.user_files_lost += len(lost)
        figures.secrets_written += secrets
        if lost or secrets:
            figures.failures[name] = (f"user files lost or changed: {lost}; " if lost else "") + \
                (f"{secrets} files or outputs hold a planted secret; " if secrets else "") + figures.failures.get(name, "")
        figures.passed += name not in figures.failures
    return figures


def _secrets_in(case: Case) -> int:
    found = 0
    blobs = [p.read_bytes() for p in case.root.rglob("*") if p.is_file() and p.suffix != ".yaml"
             or p.name in ("config.resolved.yaml", "recipe.yaml")]
    blobs += [text.encode() for text in case.outputs]
    for blob in blobs:
        found += any(secret.encode() in blob for secret in SECRETS)
    return found


if __name__ == "__main__":  # pragma: no cover - python -m tests.chaos.hostile_user
    import tempfile

    from tests.servers.openai_compat import OpenAICompatServer

    server = OpenAICompatServer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="curate-hostile-user-") as tmp:
            started = time.monotonic()
            print(run_cases(Path(tmp), server.base_url), f"{time.monotonic() - started:.0f}s")
    finally:
        server.stop()
    os._exit(0)
