"""A safety system prompt built from the taxonomy's response policies, in English or Chinese."""
from __future__ import annotations

from pathlib import Path

from curate.taxonomy import Taxonomy

_HEADER = {
    "en": "You are a helpful assistant. Follow these response policies. When a request falls under one of the "
          "risk areas below, respond as its policy says; answer every other request helpfully and completely.",
    "zh": "你是一个乐于助人的助手。请遵守以下回应政策：当请求属于下列某个风险领域时，按该领域的政策回应；"
          "其他请求都应直接、完整、有帮助地回答。",
}
_SAFE = {"en": "Ordinary requests", "zh": "普通请求"}


def safety_system_prompt(lang: str, taxonomy_path: Path | None = None) -> str:
    tax = Taxonomy.load(taxonomy_path)
    lang = "zh" if lang == "zh" else "en"
    lines = [f"- {d.name(lang)} ({d.id}): {d.policy(lang)}" for d in tax.dimensions]
    lines.append(f"- {_SAFE[lang]} ({tax.safe.id}): {tax.safe.policy(lang)}")
    return _HEADER[lang] + "\n\n" + "\n".join(lines)
