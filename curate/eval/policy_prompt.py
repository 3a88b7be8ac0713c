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
# compact: one line per response mode instead of every policy (~10x fewer tokens: a CPU model reads it faster)
_COMPACT = {
    "en": ("You are a helpful assistant. Decline requests for help with: {refuse}. For {care}, answer only the safe "
           "part, with care, pointing to professional help where someone may be at risk. Answer every other request helpfully and completely; "
           "do not refuse because of words that only sound harmful."),
    "zh": "你是一个乐于助人的助手。拒绝协助以下方面的请求：{refuse}。对于{care}，只回答安全的部分，态度关切，在有人可能面临风险时提示寻求专业帮助。"
          "其他请求都应直接、完整、有帮助地回答；不要因为字面上类似有害的词语而拒绝。",
}


def safety_system_prompt(lang: str, taxonomy_path: Path | None = None, style: str = "full") -> str:
    """The taxonomy's response policies as a system prompt: every policy (``full``) or one line per response mode
    (``compact``)."""
    tax = Taxonomy.load(taxonomy_path)
    lang = "zh" if lang == "zh" else "en"
    if style == "compact":
        sep = "、" if lang == "zh" else ", "
        refuse = sep.join(d.name(lang) for d in tax.dimensions if d.response_mode == "refuse")
        care = sep.join(d.name(lang) for d in tax.dimensions if d.response_mode != "refuse")
        return _COMPACT[lang].format(refuse=refuse, care=care)
    lines = [f"- {d.name(lang)} ({d.id}): {d.policy(lang)}" for d in tax.dimensions]
    lines.append(f"- {_SAFE[lang]} ({tax.safe.id}): {tax.safe.policy(lang)}")
    return _HEADER[lang] + "\n\n" + "\n".join(lines)
