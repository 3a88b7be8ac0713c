"""What a small model wraps around its answer, taken off before the checks; what cannot be taken off is reported.

Measured on Qwen2.5-Coder-1.5B (tests/fixtures/embedded_outputs.jsonl holds the real answers): it often
wraps the reply in ``<response>...</response>`` / ``<reply>`` or opens it with a label (``Reply:``,
``回复：``), sometimes only repeats the question, and sometimes reasons "this is benign" and then refuses.
Unwrapping is parsing (the answer is still the model's); the rest are drop reasons (filters.py).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter

_WRAPPERS = ("response", "reply", "answer", "output", "assistant", "final", "final_answer", "回复", "回答")
_WRAP = re.compile(r"^\s*<(" + "|".join(_WRAPPERS) + r")>\s*(.*?)\s*(?:</\1>\s*)?$", re.S | re.I)
_LABEL = re.compile(r"^\s*(?:\*\*|#+\s*)?(?:final\s+)?(?:reply|response|answer|assistant|回复|回答|答复|最终回复)"
                    r"(?:\s+to\s+the\s+user)?\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*", re.I)
# The template's own placeholder said back ("(your reply to the user)"): measured on the real model.
_PLACEHOLDER = re.compile(r"^\s*[(（]\s*(?:your (?:reply|answer|response)[^)）\n]*|你(?:给用户)?的(?:回复|回答))\s*[)）]\s*", re.I)
_LEFTOVER_TAG = re.compile(r"</?(?:" + "|".join(_WRAPPERS) + r"|think|reasoning)\s*>", re.I)


def clean_answer(answer: str) -> str:
    """The answer without a wrapping tag pair, a leading label or an echoed template placeholder (repeated until
    nothing changes)."""
    text = answer.strip()
    while True:
        before = text
        m = _WRAP.match(text)
        if m:
            text = m.group(2).strip()
        text = _LABEL.sub("", text, count=1).strip()
        text = _PLACEHOLDER.sub("", text, count=1).strip()
        if text == before:
            return text


def has_leftover_markup(answer: str) -> bool:
    """A wrapper or reasoning tag is still inside the answer (it did not wrap the whole of it)."""
    return bool(_LEFTOVER_TAG.search(answer))


def _letters(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def _letter_grams(text: str, n: int) -> list[str]:
    """The n-grams of ``text``'s letters and digits (case and width folded), in order."""
    t = _letters(text)
    return [t[i:i + n] for i in range(len(t) - n + 1)]


def echoes_prompt(answer: str, prompt: str) -> bool:
    """The answer is (mostly) the user's question said again, with little else."""
    a, p = _letters(answer), _letters(prompt)
    if not a or not p or len(p) < 8:
        return False
    # an answer inside the prompt adds nothing, however long the prompt (measured: the last sentence of a long
    # question said back as the answer)
    return (p in a and len(a) < 1.5 * len(p)) or (a in p and len(a) >= 8)


def reasoning_repeats_answer(reasoning: str, answer: str, prompt: str = "", *, shingle: int = 6,
                             share: float = 0.6) -> bool:
    """Most of the answer already stands in the reasoning: the model wrote its reply as the reasoning and then
    said it again (measured on the embedded model for how-to questions). Share of the answer's letter n-grams
    found in the reasoning; n-grams of the prompt do not count (both may quote the question)."""
    if opens_with_reasoning(reasoning, answer, prompt):
        return True
    own = set(_letter_grams(answer, shingle)) - set(_letter_grams(prompt, shingle))
    if len(own) < shingle:
        return False
    return len(own & set(_letter_grams(reasoning, shingle))) >= share * len(own)


def opens_with_reasoning(reasoning: str, answer: str, prompt: str = "", letters: int = 30) -> bool:
    """The reply opens with the reasoning's own first words ("The user's request involves ..." twice; measured on a
    long reply, where the shared share stayed under the threshold). Words quoted from the prompt do not count."""
    r, a = _letters(reasoning)[:letters], _letters(answer)[:letters]
    return len(r) == letters and a == r and r not in _letters(prompt)


# The reply speaks of the request instead of to the user: "the user" in the third person, "the policy" of the system
# turn (measured: "The policy on insults ... clearly states", "如何在政策要求时指引专业帮助"). Not counted when the
# prompt itself has the word (a question about an app's users or a privacy policy).
_META_TALK = ((re.compile(r"\bthe users?(?:'s)?\b", re.I), re.compile(r"\busers?\b", re.I)),
              (re.compile(r"\bthe (?:response )?policy\b|\bpolicy (?:on|for)\b", re.I), re.compile(r"\bpolic", re.I)),
              (re.compile("用户"), re.compile("用户")), (re.compile("政策"), re.compile("政策")))


def talks_about_the_request(answer: str, prompt: str) -> bool:
    return any(said.search(answer) and not asked.search(prompt) for said, asked in _META_TALK)


def has_stray_cjk(text: str, prompt: str) -> bool:
    """Chinese characters in an English text that the prompt does not have ("Stay informed about the最新")."""
    return bool(set(_CJK.findall(text)) - set(_CJK.findall(prompt)))


def is_repetitive(answer: str, *, shingle: int = 12, repeated_share: float = 0.6, min_letters: int = 40) -> bool:
    """The answer loops: most of its letter n-grams occur more than once (measured: a Chinese reply that says the
    same sentence two and a half times). Lists and steps repeat a few words per line, far below that."""
    if len(_letters(answer)) < min_letters:
        return False
    grams = _letter_grams(answer, shingle)
    counts = Counter(grams)
    return sum(counts[g] > 1 for g in grams) >= repeated_share * len(grams)


_CJK = re.compile(r"[\u3400-\u9fff]")


_HEAD_END = re.compile(r"[:：,，;；.。]")
_CLAUSE_LETTERS = {"cjk": 10, "latin": 30}  # shorter clauses are ordinary phrases ("general safety information")


def _is_long_clause(clause: str) -> bool:
    return len(_letters(clause)) >= _CLAUSE_LETTERS["cjk" if _CJK.search(clause) else "latin"]


def instruction_heads(template_text: str) -> tuple[str, ...]:
    """The clauses of each instruction bullet of a template, the opening one first ("decline clearly and briefly",
    "满足正当需求"): what a small model copies into its reply."""
    heads = []
    for line in template_text.splitlines():
        if line.startswith("- "):
            head, *rest = [c.strip().lower() for c in _HEAD_END.split(line[2:])]
            if len(head) >= 4:
                heads.append(head)
            heads += [c for c in rest if _is_long_clause(c)]
    return tuple(heads)


def quotes_instructions(answer: str, heads: tuple[str, ...]) -> bool:
    """The reply uses an instruction of the template as a label ("Decline clearly and briefly: ...", "- 满足正当需求：")
    or says a long clause of one word for word ("哪怕是部分的或假设性的") instead of following it (measured on the
    embedded model)."""
    low = answer.lower()
    labels = any(f"{h}:" in low or f"{h}：" in low or f"- {h}" in low or f"\"{h}" in low for h in heads)
    return labels or any(h in low for h in heads if _is_long_clause(h))


_BENIGN_VERDICT = re.compile(r"(is|seems|appears)\s+(benign|harmless|safe to answer|a (legitimate|normal|harmless))|"
                             r"no (safety )?(concern|risk)|nothing harmful|(无害|正常的?问题|是安全的|可以回答|没有(安全)?风险)", re.I)
_REFUSE_VERDICT = re.compile(r"(should|must|will|need to|have to)\s+(not|n't)\s+(provide|help|assist|give)|"
                             r"(should|must|will)\s+(decline|refuse)|"
                             r"(不应该?|不能|不可以|必须拒绝|应该拒绝|应当拒绝|不会)(提供|帮助|协助|回答)", re.I)


def reasoning_contradicts(reasoning: str, answer_refuses: bool, goal: str) -> bool:
    """The reasoning reaches one verdict and the answer does the other: "benign" then a refusal, or "must not
    help" then a plain helpful answer (a safe completion declines details while helping, so it is not checked)."""
    says_benign = bool(_BENIGN_VERDICT.search(reasoning))
    says_refuse = bool(_REFUSE_VERDICT.search(reasoning))
    if says_benign == says_refuse:
        return False  # no clear verdict (or both): nothing to contradict
    return (says_benign and answer_refuses) or (says_refuse and not answer_refuses and goal == "helpful")
