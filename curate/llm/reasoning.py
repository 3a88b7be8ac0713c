"""Split a chat answer into (reasoning, final answer), whichever way the server delivers the reasoning.

- ``message.reasoning_content`` (vLLM with a reasoning parser, DeepSeek API): reasoning is separate.
- ``<think>...</think>`` inside ``content`` (llama.cpp, many open models served raw). Some chat templates
  open the think block in the prompt, so the answer may hold only the closing tag.
- Non-reasoning models are asked by our templates for an explicit ``<reasoning>...</reasoning>`` block
  (``<think>`` is accepted too), which this parses the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

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
    elif "</" in text:  # _CLOSE_ONLY's lazy scan costs a regex step per character of every untagged answer
        m = _CLOSE_ONLY.match(text)
        if m and "<" + m.group(2).lower() not in m.group(1).lower():
            tagged, text = m.group(1).strip(), text[m.end():]
    reasoning = (reasoning_content or "").strip() or tagged
    return (reasoning or None), text.strip()


# Characters a reasoning block may not hold under the grammar: tags, code fences, markdown and LaTeX. A small
# model that starts writing its reply (steps, commands, code) inside the block is steered out of it.
_GRAMMAR_EXCLUDED = "<`*#|\\\\"


@dataclass(frozen=True)
class Shape:
    """What the shape grammar forces besides the block itself; a template's front matter sets it.

    ``reasoning_lead`` opens the reasoning (e.g. "The user"), so a small model analyses the request there instead
    of writing its reply twice; ``reply_leads`` are the openings the reply may start with (e.g. refusals);
    ``reply_min_chars`` keeps the model from stopping before the reply has that many characters after its lead (a
    bare "Sorry, I can't." becomes a refusal that also offers something); ``max_reasoning_chars`` caps the
    option of that name ("two to four sentences"); ``one_paragraph``: the reasoning may not break lines, so a
    model that starts a list of the reply's points there has to close the block instead."""
    reasoning_lead: str = ""
    reply_leads: tuple[str, ...] = ()
    reply_min_chars: int = 1
    max_reasoning_chars: int | None = None
    one_paragraph: bool = False

    def longest(self, max_chars: int) -> int:
        """The most characters the reasoning may have after its lead."""
        return min(max_chars, self.max_reasoning_chars or max_chars)

    def reasoning_cap(self, max_chars: int) -> int:
        """The length of a parsed reasoning that the grammar cut off (lead included)."""
        return len(self.reasoning_lead) + self.longest(max_chars)


def reasoning_grammar(min_chars: int, max_chars: int, shape: Shape = Shape()) -> str:
    """A llama.cpp GBNF grammar for ``<reasoning>`` + prose of min..max characters + ``</reasoning>`` + the reply.

    Sent as the request's ``grammar`` field (llama.cpp's server; other servers ignore or reject unknown fields, so
    callers send it only to llama.cpp). Measured on the embedded 1.5B model: without it, most helpful answers were
    written inside a block that never closed (``synth_unclosed_reasoning``); with it every answer has the shape.
    """
    excluded = _GRAMMAR_EXCLUDED + ("\\n" if shape.one_paragraph else "")
    lo, hi = max(1, min_chars), max(shape.longest(max_chars), min_chars, 1)
    lead = f" {gbnf_literal(shape.reasoning_lead)}" if shape.reasoning_lead else ""
    if shape.reasoning_lead[-1:].isascii() and shape.reasoning_lead[-1:].isalpha():
        # the lead is a whole word: without this the model glued sub-words to it ("The usereadcrumb", measured)
        lead += f" [^a-zA-Z{excluded}]"
        lo, hi = max(1, lo - 1), max(1, hi - 1)
    leads = shape.reply_leads
    reply_lead = (" (" + " | ".join(gbnf_literal(x) for x in leads) + ")") if leads else ""
    return (f'root ::= "<reasoning>\\n"{lead} think "\\n</reasoning>\\n\\n"{reply_lead} reply\n'
            f'think ::= [^{excluded}]{{{lo},{hi}}}\n'
            f'reply ::= [^\\x00]{{{max(1, shape.reply_min_chars)},}}\n')


def gbnf_literal(text: str) -> str:
    """``text`` as a quoted GBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def has_unclosed_reasoning(content: str | None) -> bool:
    """True when a reasoning block was opened and never closed (the answer was cut off inside it)."""
    low = (content or "").lower()
    return any(f"<{t}>" in low and f"</{t}>" not in low for t in _TAGS)
