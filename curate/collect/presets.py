"""Built-in presets for known safety datasets: which files, which fields, which label set and licence.

A preset turns one raw row of its files into ``Item``s (or an error string, which is quarantined).
Label strings emitted here are the keys of ``taxonomy/default/mappings/<label_set>.yaml``.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from curate.collect.values import label_values

Conv = Callable[[dict[str, Any], str], "Item | list[Item] | str"]


@dataclass
class Item:
    source_id: str
    prompt: Any
    response: Any = None
    labels: list[str] = field(default_factory=list)
    lang: str | None = None
    attack: str | None = None
    response_kind: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    files: tuple[str, ...]  # glob patterns inside the dataset folder
    format: str
    convert: Conv
    label_set: str | None
    license: str
    role: str = "safety"
    for_languages: Callable[[list[str]], Conv] | None = None  # parallel sets: emit only these language columns

    def converter(self, languages: list[str] | None) -> Conv:
        return self.for_languages(languages) if languages and self.for_languages else self.convert


def _need(row: dict[str, Any], *keys: str) -> str | None:
    missing = [k for k in keys if k not in row]
    return f"missing field {missing[0]!r}" if missing else None


def _python_list(text: Any) -> list[str]:
    """Lists stored as Python literals ("['a', 'b']"). ast.literal_eval parses literals only, never runs code."""
    if not isinstance(text, str) or not text.strip():
        return label_values(text, "labels")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return [text.strip()]
    return label_values(value, "labels")


def _advbench(row, loc):
    return _need(row, "Behavior") or Item(row.get("BehaviorID") or loc, row["Behavior"], labels=["harmful_behavior"],
                                           lang="en")


def _harmbench(row, loc):
    if err := _need(row, "Behavior", "SemanticCategory"):
        return err
    context = (row.get("ContextString") or "").strip()
    prompt = f"{context}\n\n{row['Behavior']}" if context else row["Behavior"]
    return Item(row.get("BehaviorID") or loc, prompt, labels=[row["SemanticCategory"]], lang="en",
                extra={"functional_category": row.get("FunctionalCategory")})


def _strongreject(row, loc):
    return _need(row, "forbidden_prompt", "category") or Item(loc, row["forbidden_prompt"], labels=[row["category"]],
                                                              lang="en", extra={"upstream": row.get("source")})


def _simplesafetytests(row, loc):
    return _need(row, "prompts_final", "harm_area") or Item(row.get("id") or loc, row["prompts_final"],
                                                            labels=[row["harm_area"]], lang="en")


def _xstest(row, loc):
    if err := _need(row, "prompt", "label", "type"):
        return err
    return Item(row.get("id") or loc, row["prompt"], labels=[f"{row['label']}:{row['type']}"], lang="en",
                extra={"focus": row.get("focus"), "note": row.get("note")})


_XSTEST_KIND = {"1_full_compliance": "helpful", "2_full_refusal": "refusal", "3_partial_refusal": "safe_completion"}


def _xstest_completions(row, loc):
    if err := _need(row, "id", "prompt", "completion", "final_label", "type"):
        return err
    kind = _XSTEST_KIND.get(row["final_label"])
    unsafe = row["type"].startswith("contrast_")
    if kind == "helpful" and unsafe:
        kind = "harmful"
    label = f"{'unsafe' if unsafe else 'safe'}:{row['type']}"
    model = loc.split(":")[0].rsplit("/", 1)[-1].replace("xstest_v2_completions_", "").replace(".csv", "")
    return Item(f"{model}:{row['id']}", row["prompt"], response=row["completion"], labels=[label], lang="en",
                response_kind=kind, extra={"completion_model": model, "final_label": row["final_label"]})


_MODERATION_KEYS = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")


def _openai_moderation(row, loc):
    if err := _need(row, "prompt"):
        return err
    positive = [k for k in _MODERATION_KEYS if row.get(k) == 1]
    labelled = [k for k in _MODERATION_KEYS if row.get(k) in (0, 1)]
    labels = positive or (["none"] if labelled else [])
    return Item(loc.rsplit(":", 1)[-1], row["prompt"], labels=labels, lang="en")


def _multijail(languages: Iterable[str] = ("en", "zh", "it", "vi", "ar", "ko", "th", "bn", "sw", "jv")):
    def convert(row, loc):
        if err := _need(row, "id", "tags", "en"):
            return err
        tags = _python_list(row["tags"])
        return [Item(f"{row['id']}:{lang}", row[lang], labels=tags, lang=lang,
                     extra={"parallel_id": row["id"], "upstream": row.get("source")})
                for lang in languages if (row.get(lang) or "").strip()]
    return convert


def _xsafety(row, loc):
    if err := _need(row, "text", "category", "lang"):
        return err
    return Item(f"{row.get('source_file', row['lang'])}:{row.get('idx', loc)}", row["text"], labels=[row["category"]],
                lang=row["lang"])


def _safetybench(row, loc):
    if err := _need(row, "id", "question", "category"):
        return err
    options = row.get("options") or []
    letters = "ABCD"
    body = "\n".join(f"{letters[i]}. {opt}" for i, opt in enumerate(options[:4]))
    prompt = f"{row['question']}\n{body}" if body else row["question"]
    return Item(str(row["id"]), prompt, labels=[row["category"]], lang="zh")


def _cold(row, loc):
    if err := _need(row, "TEXT", "label"):
        return err
    index = row.get("") or row.get("\ufeff")  # COLD's own index repeats within a file: the line is the id
    labels = [f"label:{row['label']}"]
    if row.get("topic"):
        labels.append(f"topic:{row['topic']}")
    if (row.get("fine-grained-label") or "").strip():
        labels.append(f"fine:{row['fine-grained-label'].strip()}")
    return Item(loc, row["TEXT"], labels=labels, lang="zh", extra={"cold_index": index})


def _flames(row, loc):
    if err := _need(row, "prompt", "dimension", "subcomponent"):
        return err
    return Item(loc.rsplit(":", 1)[-1], row["prompt"], labels=[f"{row['dimension']}/{row['subcomponent']}"], lang="zh")


def _cvalues(row, loc):
    if err := _need(row, "prompt"):
        return err
    return Item(str(row.get("id_") or loc), row["prompt"], labels=[row["domain_en"]] if row.get("domain_en") else [],
                lang="zh", extra={"domain_zh": row.get("domain_zh")})


def _s_eval(row, loc):
    if err := _need(row, "traceid", "prompt", "risk_type"):
        return err
    attack = None
    try:
        ext = json.loads(row.get("ext") or "{}")
        if isinstance(ext, dict) and ext.get("model") == "attack":
            attack = ext.get("category")
    except (json.JSONDecodeError, TypeError):
        pass
    lang = "zh" if "_zh_" in loc else "en" if "_en_" in loc else None  # S-Eval names files by language
    return Item(row["traceid"], row["prompt"], labels=[row["risk_type"]], attack=attack, lang=lang)


def _star1(row, loc):
    if err := _need(row, "question", "response"):
        return err
    return Item(str(row.get("id") or loc), row["question"], response=row["response"],
                labels=_python_list(row.get("category") or ""), lang="en", extra={"upstream": row.get("source")})


def _gsm8k(row, loc):
    if err := _need(row, "question", "answer"):
        return err
    steps, _, final = row["answer"].rpartition("####")
    return Item(loc.rsplit(":", 1)[-1], row["question"], response=final.strip() if steps else row["answer"],
                lang="en", response_kind="helpful", extra={"reasoning": steps.strip()} if steps else {})


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("advbench", "AdvBench harmful behaviors (en)", ("advbench_behaviors.csv",), "csv", _advbench,
           "advbench", "MIT"),
    Preset("harmbench", "HarmBench text behaviors (en)", ("harmbench_behaviors_text_all.csv",), "csv", _harmbench,
           "harmbench", "MIT"),
    Preset("strongreject", "StrongREJECT forbidden prompts (en)", ("strongreject*.csv",), "csv", _strongreject,
           "strongreject", "MIT"),
    Preset("simplesafetytests", "SimpleSafetyTests (en)", ("simplesafetytests.csv",), "csv", _simplesafetytests,
           "simplesafetytests", "CC-BY-4.0"),
    Preset("xstest", "XSTest safe look-alikes and unsafe contrasts (en)", ("xstest_prompts.csv",), "csv", _xstest,
           "xstest", "CC-BY-4.0"),
    Preset("xstest_completions", "XSTest v2 model completions with human refusal labels (en)",
           ("model_completions/*.csv",), "csv", _xstest_completions, "xstest", "CC-BY-4.0"),
    Preset("openai_moderation", "OpenAI moderation evaluation set (en, content)", ("samples-*.jsonl*",), "jsonl",
           _openai_moderation, "openai_moderation", "MIT"),
    Preset("multijail", "MultiJail parallel prompts (en, zh and 8 more)", ("MultiJail.csv",), "csv", _multijail(),
           "multijail", "MIT", for_languages=_multijail),
    Preset("xsafety", "XSafety prompts (en, zh)", ("xsafety_en_zh.jsonl",), "jsonl", _xsafety, "xsafety",
           "Apache-2.0"),
    Preset("safetybench", "SafetyBench Chinese subset (multiple choice)", ("test_zh_subset.json",), "json",
           _safetybench, "safetybench", "MIT"),
    Preset("cold", "COLD Chinese offensive language", ("train.csv*", "dev.csv*", "test.csv*"), "csv", _cold, "cold",
           "Apache-2.0"),
    Preset("flames", "Flames-1k adversarial prompts (zh)", ("Flames_1k_Chinese.jsonl",), "jsonl", _flames, "flames",
           "Apache-2.0"),
    Preset("cvalues", "CValues responsibility prompts (zh, answer responsibly)", ("cvalues_responsibility_prompts.jsonl",),
           "jsonl", _cvalues, "cvalues", "Apache-2.0"),
    Preset("s_eval", "S-Eval risk and attack prompts (zh, en)", ("S-Eval_*.jsonl*",), "jsonl", _s_eval, "s_eval",
           "CC-BY-NC-SA-4.0"),
    Preset("star1", "STAR-1 prompts with policy-grounded reasoning answers (en)", ("STAR-1.json*",), "json", _star1,
           "star1", "Apache-2.0"),
    Preset("gsm8k", "GSM8K math word problems with step-by-step answers (general reasoning, en)", ("train.jsonl*",),
           "jsonl", _gsm8k, None, "MIT", role="general"),
]}
