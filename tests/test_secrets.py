"""Secrets set in the environment never reach the run folder, logs, reports, manifests or the dataset card."""
import subprocess
import sys
from pathlib import Path

import yaml

from tests.fixtures.openai_server import _openai_server_session, openai_server  # noqa: F401

QUICKSTART = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "quickstart"
SECRETS = {
    "OPENAI_API_KEY": "sk-curate-LEAKCHECK-0123456789-abcdefABCDEF",
    "HF_TOKEN": "hf_curate-LEAKCHECK-abcdefghijklmnopqrstuvwx",
    "LABEL_STUDIO_API_KEY": "ls-curateLEAKCHECK-token-0123456789",
}


def test_no_secret_in_any_output_byte(tmp_path, openai_server):  # noqa: F811
    config = {"name": "secrets", "run_dir": str(tmp_path / "run"), "stages": [
        {"collect": {"sources": [{"preset": "xstest", "path": str(QUICKSTART / "xstest")},
                                 {"preset": "star1", "path": str(QUICKSTART / "star1")}]}},
        {"synthesize": {"base_url": openai_server.base_url, "model": "leak-test", "concurrency": 8}},
        {"balance": {"seed": 1}},
        {"export": {}},
    ]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {"PATH": "/usr/bin:/bin", **SECRETS, "OPENAI_BASE_URL": openai_server.base_url}
    proc = subprocess.run([sys.executable, "-m", "curate.cli", "run", str(path)], capture_output=True, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert openai_server.count > 0  # the key really was used
    outputs = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.name == "README.md" for p in outputs) and any(p.name == "report.html" for p in outputs)
    blobs = {str(p): p.read_bytes() for p in outputs}
    blobs["stdout"], blobs["stderr"] = proc.stdout, proc.stderr
    for name, secret in SECRETS.items():
        for where, data in blobs.items():
            assert secret.encode() not in data, f"{name} leaked into {where}"
            assert secret[8:30].encode() not in data, f"part of {name} leaked into {where}"
