"""The one place curate talks to language models: any OpenAI-compatible endpoint.

    from curate.llm import LLMConfig, Request, run_requests
    outcomes, stats = run_requests(config, [Request(messages=[...], params={"temperature": 0})])

Stages take their endpoint options from ``LLMOptions`` and judges build requests with ``json_request``.
"""
from importlib import import_module

from curate.llm.config import LLMConfig, LLMOptions, resolve_endpoint
from curate.llm.reasoning import split_reasoning

# The client pulls in openai (~0.6 s): imported on first use, so stages that only read options start fast.
_LAZY = {"Completion": "client", "LLMClient": "client", "LLMStats": "client", "MalformedAnswer": "client",
         "Outcome": "client", "Request": "client", "data_block": "structured", "extract_json": "structured",
         "json_request": "structured", "run_requests": "sync", "run_sync": "sync"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"curate.llm.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'curate.llm' has no attribute {name!r}")

__all__ = ["Completion", "LLMClient", "LLMConfig", "LLMOptions", "LLMStats", "MalformedAnswer", "Outcome", "Request",
           "data_block", "extract_json", "json_request", "resolve_endpoint", "run_requests", "run_sync",
           "split_reasoning"]
