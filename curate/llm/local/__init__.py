"""The embedded default model: Qwen2.5-Coder-1.5B-Instruct (GGUF) served by llama.cpp on 127.0.0.1.

model.py fetches and verifies the weights, runtime.py finds or builds ``llama-server``, server.py starts
and stops it by PID, endpoint.py is what ``base_url: local`` resolves to, cli.py is ``curate llm``.
"""
from curate.llm.local.endpoint import LOCAL, LocalSession, local_server, prepare, running_server
from curate.llm.local.errors import LocalModelError
from curate.llm.local.model import DEFAULT_MODEL, ensure_model
from curate.llm.local.runtime import ensure_server

__all__ = ["DEFAULT_MODEL", "LOCAL", "LocalModelError", "LocalSession", "ensure_model", "ensure_server",
           "local_server", "prepare", "running_server"]
