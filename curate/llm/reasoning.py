"""Split a chat answer into (reasoning, final answer), whichever way the server delivers the reasoning.

- ``message.reasoning_content`` (vLLM with a reasoning parser, DeepSeek API): reasoning is separate.
- ``<think>...</think>`` inside ``content`` (llama.cpp, many open models served raw). Some chat templates
  open the think block in the prompt, so the answer may hold only the closing tag.
- Non-reasoning models are asked by our templates for an explicit ``<reasoning>...</reasoning>`` block
  (``<think>`` is accepted too), which this parses the same way.
"""
from __future__ import annotations

import re

_TAGS = ("think", "reasoning")
_BLOCK = re.compile(r"^\s*<(think|reasoning)>(.*?)</\1>\s*", re.S | re.I)
_CLOSE_ONLY = re.compile(r"^(.*?)</(think|reasoning)>\s*", re.S | re.I)


def split_reasoning(content: str | None, reasoning_content: str | None = None) -> tuple[str | None, str]:
    """(reasoning or None, answer). A tag-delimited block wins over nothing; a separate field wins over tags."""
    text = content or ""
    tagged: str | None = None
    m = _BLOCK.match(text)
    if m:
        tagged, text = m.group(2).strip(), text[m.end():]
    else:
        m = _CLOSE_ONLY.match(text)
        if m and "<" + m.group(2).lower() not in m.group(1).lower():
            tagged, text = m.group(1).strip(), text[m.end():]
    reasoning = (reasoning_content or "").strip() or tagged
    return (reasoning or None), text.strip()


# Characters a reasoning block may not hold under the grammar: tags, code fences, markdown and LaTeX. A small
# model that starts writing its reply (steps, commands, code) inside the block is steered out of it.
_GRAMMAR_EXCLUDED = "<`*#|\\\\"


def reasoning_grammar(min_chars: int, max_chars: int) -> str:
    """A llama.cpp GBNF grammar for ``<reasoning>`` + prose of min..max characters + ``</reasoning>`` + the reply.

    Sent as the request's ``grammar`` field (llama.cpp's server; other servers ignore or reject unknown fields, so
    callers send it only to llama.cpp). Measured on the embedded 1.5B model: without it, most helpful answers were
    written inside a block that never closed (``synth_unclosed_reasoning``); with it every answer has the shape.
    """
    lo, hi = max(1, min_chars), max(max_chars, min_chars, 1)
    return (f'root ::= "<reasoning>\\n" think "\\n</reasoning>\\n\\n" reply\n'
            f'think ::= [^{_GRAMMAR_EXCLUDED}]{{{lo},{hi}}}\n'
            f'reply ::= [^\\x00]+\n')


def has_unclosed_reasoning(content: str | None) -> bool:
    """True when a reasoning block was opened and never closed (the answer was cut off inside it)."""
    low = (content or "").lower()
    return any(f"<{t}>" in low and f"</{t}>" not in low for t in _TAGS)
