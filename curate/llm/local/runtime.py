"""The runtime that serves the embedded model: llama.cpp's ``llama-server``, found or built once.

Order: a ``llama-server`` on PATH (``$CURATE_LLAMA_SERVER`` names one explicitly), else the build in the
user cache, else build it. The registry has no binary wheel of llama.cpp for every Python, but the pinned
``llama-cpp-python`` sdist vendors llama.cpp's source; we build only the ``llama-server`` target from it
with cmake and ninja (from PATH, else pip's ``cmake`` / ``ninja`` wheels), about 330 s on 2 cores.

CPU flags are explicit (``GGML_NATIVE=OFF``): a native build on these VMs uses AMX, which the CPU
advertises and the hypervisor does not enable, and dies on the first request. So the flags come from
/proc/cpuinfo, AMX is never on, and the cache key holds the flags (a cache copied to another CPU rebuilds).
"""
from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from curate.llm.local.errors import LocalModelError
from curate.llm.local.paths import runtime_dir

SERVER_ENV = "CURATE_LLAMA_SERVER"
SDIST = "llama-cpp-python"
SDIST_VERSION = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
BINARY = "llama-server"

# /proc/cpuinfo flag -> ggml cmake option (x86). AMX is left out on purpose (see the module docstring).
CPU_OPTIONS = {
    "avx": "GGML_AVX", "avx2": "GGML_AVX2", "fma": "GGML_FMA", "f16c": "GGML_F16C", "bmi2": "GGML_BMI2",
    "avx512f": "GGML_AVX512", "avx512_vnni": "GGML_AVX512_VNNI", "avx512vbmi": "GGML_AVX512_VBMI",
    "avx512_bf16": "GGML_AVX512_BF16",
}
FIXED_OPTIONS = {
    "CMAKE_BUILD_TYPE": "Release", "BUILD_SHARED_LIBS": "OFF", "GGML_NATIVE": "OFF",
    "GGML_AMX_TILE": "OFF", "GGML_AMX_INT8": "OFF", "GGML_AMX_BF16": "OFF",
    "LLAMA_CURL": "OFF", "LLAMA_OPENSSL": "OFF", "LLAMA_BUILD_TESTS": "OFF", "LLAMA_BUILD_EXAMPLES": "OFF",
    "LLAMA_BUILD_UI": "OFF", "LLAMA_USE_PREBUILT_UI": "OFF",  # the prebuilt UI would be downloaded
}


def cpu_flags(cpuinfo: str | None = None) -> list[str]:
    """The CPU features (of those we build for) this machine's /proc/cpuinfo lists, sorted."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    line = next((l for l in cpuinfo.splitlines() if l.startswith("flags")), "")
    have = set(line.partition(":")[2].split())
    return sorted(f for f in CPU_OPTIONS if f in have)


def cmake_options(flags: list[str]) -> dict[str, str]:
    options = dict(FIXED_OPTIONS)
    if platform.machine().lower() in ("x86_64", "amd64", "i686"):
        options.update({opt: ("ON" if flag in flags else "OFF") for flag, opt in CPU_OPTIONS.items()})
    return options


def build_key(flags: list[str]) -> str:
    """Cache key of a build: llama.cpp version + machine + CPU flags."""
    digest = hashlib.sha256(",".join(flags).encode()).hexdigest()[:10]
    return f"{SDIST_VERSION}-{platform.machine().lower()}-{digest}"


def cached_binary(flags: list[str] | None = None) -> Path:
    return runtime_dir() / build_key(cpu_flags() if flags is None else flags) / BINARY


def find_server() -> Path | None:
    """An existing llama-server: $CURATE_LLAMA_SERVER, then PATH, then the cached build."""
    explicit = os.environ.get(SERVER_ENV)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LocalModelError(f"${SERVER_ENV}={explicit} is not an executable file")
        return path
    on_path = shutil.which(BINARY)
    if on_path:
        return Path(on_path)
    cached = cached_binary()
    return cached if cached.is_file() else None


def compiler() -> str | None:
    return next((c for c in (os.environ.get("CXX"), "c++", "g++", "clang++") if c and shutil.which(c)), None)


def ensure_server(log: Callable[[str], None] = print, progress=None) -> Path:
    """The llama-server binary, building it (once, a few minutes) when none is found."""
    found = find_server()
    if found is not None:
        return found
    if compiler() is None:
        raise LocalModelError("no C++ compiler found to build llama.cpp's llama-server (install g++ or "
                              f"put a llama-server on PATH / in ${SERVER_ENV}), or point at an endpoint "
                              "with OPENAI_BASE_URL and OPENAI_MODEL")
    return build_server(log=log, progress=progress)


def build_server(log: Callable[[str], None] = print, progress=None, jobs: int | None = None) -> Path:
    flags = cpu_flags()
    target = cached_binary(flags)
    log(f"[llm] building llama.cpp's {BINARY} once for this CPU ({', '.join(flags) or 'generic'}); "
        "about 6 minutes on 2 cores. Later runs reuse it from " + str(target.parent))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="curate-build-", dir=target.parent.parent) as tmp:
        tmp_path = Path(tmp)
        cmake, ninja = _build_tools(tmp_path / "tools")
        source = _vendored_source(tmp_path)
        build = tmp_path / "build"
        configure = [str(cmake), "-S", str(source), "-B", str(build), "-G", "Ninja",
                     f"-DCMAKE_MAKE_PROGRAM={ninja}", *(f"-D{k}={v}" for k, v in cmake_options(flags).items())]
        _run(configure, "configure")
        _compile([str(cmake), "--build", str(build), "--target", BINARY, "-j", str(jobs or os.cpu_count() or 2)],
                 progress)
        built = build / "bin" / BINARY
        if not built.is_file():
            raise LocalModelError(f"the build finished but {built} is missing")
        partial = target.with_suffix(".partial")
        shutil.copy2(built, partial)
        os.replace(partial, target)
    log(f"[llm] built {target}")
    return target


def _build_tools(folder: Path) -> tuple[Path, Path]:
    """cmake and ninja from PATH, else from pip's wheels installed into a temporary folder."""
    cmake, ninja = shutil.which("cmake"), shutil.which("ninja")
    missing = [name for name, found in (("cmake", cmake), ("ninja", ninja)) if not found]
    if missing:
        _pip("install", "--quiet", "--target", str(folder), *missing)
        if not cmake:
            cmake = next(iter(folder.glob("cmake/data/bin/cmake")), None)
        if not ninja:
            ninja = next(iter(folder.glob("ninja/data/bin/ninja")), None)
    if not cmake or not ninja:
        raise LocalModelError("cmake / ninja not available (pip install cmake ninja failed)")
    return Path(cmake), Path(ninja)


def _vendored_source(folder: Path) -> Path:
    """Download the pinned sdist (hash-checked by pip) and unpack only its vendored llama.cpp."""
    req = folder / "requirements.txt"
    req.write_text(f"{SDIST}=={SDIST_VERSION} --hash=sha256:{SDIST_SHA256}\n")
    _pip("download", "--quiet", "--no-deps", "--no-binary", SDIST, "--require-hashes",
         "-r", str(req), "-d", str(folder / "sdist"))
    archive = next(iter((folder / "sdist").glob("*.tar.gz")), None)
    if archive is None:
        raise LocalModelError(f"pip did not deliver the {SDIST} sdist")
    prefix = f"{archive.name[:-len('.tar.gz')]}/vendor/llama.cpp/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        if not members:
            raise LocalModelError(f"{archive.name} holds no vendor/llama.cpp")
        tar.extractall(folder / "src", members=members, filter="data")
    return folder / "src" / prefix.rstrip("/")


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise LocalModelError(f"pip {args[0]} failed: {last}")


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise LocalModelError(f"llama.cpp {what} failed: {tail}")


_STEP = re.compile(r"^\[(\d+)/(\d+)\]")


def _compile(cmd: list[str], progress) -> None:
    """Run the build, feeding ninja's ``[n/total]`` lines to ``progress(done, total)``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    try:
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-5:]
            m = _STEP.match(line)
            if m and progress is not None:
                progress(int(m.group(1)), int(m.group(2)))
        code = proc.wait()
    finally:
        if proc.poll() is None:  # interrupted: stop the compiler we started
            proc.kill()
            proc.wait()
    if code != 0:
        raise LocalModelError(f"llama.cpp build failed: {' | '.join(tail[-3:])}")
