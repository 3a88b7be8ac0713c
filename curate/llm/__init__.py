"""The one place curate talks to language models: any OpenAI-compatible endpoint.

    from curate.llm import LLMConfig, Request, run_requests
    outcomes, stats = run_requests(config, [Request(messages=[...], params={"temperature": 0})])

Stages take their endpoint options from ``LLMOptions`` and judges build requests with ``json_request``.
"""
from curate.llm.client import Completion, LLMClient, LLMStats, MalformedAnswer, Outcome, Request
from curate.llm.config import LLMConfig, LLMOptions, resolve_endpoint
from curate.llm.reasoning import split_reasoning
from curate.llm.structured import data_block, extract_json, json_request
from curate.llm.sync import run_requests, run_sync

__all__ = ["Completion", "LLMClient", "LLMConfig", "LLMOptions", "LLMStats", "MalformedAnswer", "Outcome", "Request",
           "data_block", "extract_json", "json_request", "resolve_endpoint", "run_requests", "run_sync",
           "split_reasoning"]
