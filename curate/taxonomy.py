"""The harm taxonomy (dimensions S01..S14 plus S00 safe) and the crosswalks from source label sets.

A taxonomy is a directory: ``dimensions.yaml`` (the dimensions, their zh/en text and response policy) and
``mappings/<label_set>.yaml`` (one file per source label scheme). The default one ships in the repository's
``taxonomy/default``; users point a pipeline at their own directory with the same layout.

Mapping file format::

    label_set: s_eval
    source: "S-Eval risk_type"
    labels:
      Crimes_and_Illegal_Activities: {categories: [S05], harmful: true}
      Goal_Hijacking: {categories: [], harmful: null, attack: goal_hijacking}   # null = decide by content
      topic:race: {categories: []}        # no 'harmful' key: the label says nothing about harm (neutral)
    rules:   # refinements, applied after the label lookup
      - label: Crimes_and_Illegal_Activities     # a label or a list of labels
        text_matches: "(?i)porn|色情"             # optional regex on the text
        with_label: "fine:1"                      # optional: another label that must be present
        categories: [S07]                         # replaces the label's categories (first such rule wins)
        # add: [S04]                              # or: adds categories (every matching add rule applies)
        # harmful: true                           # optional override of the label's harmful flag
        why: "S-Eval files pornography under crimes"

Labels are matched exactly, then case- and space-insensitively. Labels absent from a mapping are returned in
``MappedLabels.unknown``, never dropped silently. YAML is read with ``yaml.safe_load`` only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import yaml

from curate.errors import UsageError

RESPONSE_MODES = ("refuse", "safe_complete", "resources")
SAFE = "S00"  # the taxonomy's safe dimension: benign, or a benign look-alike; the one definition
_TEXT_FIELDS = ("name_en", "name_zh", "definition_en", "definition_zh", "policy_en", "policy_zh")
_CJK = re.compile(r"[\u3400-\u9fff]")
_ABSENT = object()  # a label entry without a 'harmful' key: neutral


class TaxonomyError(UsageError):
    """A taxonomy directory or mapping file cannot be read; the message names the file."""


def default_path() -> Path:
    from curate.resources import shipped

    return shipped("taxonomy") / "default"


@dataclass(frozen=True)
class Dimension:
    id: str
    key: str
    name_en: str
    name_zh: str
    definition_en: str
    definition_zh: str
    response_mode: str
    policy_en: str
    policy_zh: str
    examples_en: tuple[str, ...] = ()  # short typical requests: extra training lines for the classifier
    examples_zh: tuple[str, ...] = ()
    scope_en: str = ""  # what the dimension is not for (the catch-all S05): for the judge and annotators, not training
    scope_zh: str = ""

    def name(self, lang: str = "en") -> str:
        return self.name_zh if lang.startswith("zh") else self.name_en

    def definition(self, lang: str = "en") -> str:
        return self.definition_zh if lang.startswith("zh") else self.definition_en

    def policy(self, lang: str = "en") -> str:
        return self.policy_zh if lang.startswith("zh") else self.policy_en


@dataclass(frozen=True)
class MappedLabels:
    categories: list[str]  # sorted, unique harm dimension ids ([] = none from the labels)
    prompt_harmful: bool | None  # True if any label is harmful, False if all deciding labels are safe, else None
    attack: str | None  # attack style (goal hijacking, role play...), a separate axis from harm
    unknown: list[str]  # labels the mapping does not know


@dataclass(frozen=True)
class _Entry:
    categories: tuple[str, ...]
    harmful: Any  # True, False, None (decide by content) or _ABSENT (neutral)
    attack: str | None


@dataclass(frozen=True)
class _Rule:
    labels: tuple[str, ...]
    pattern: re.Pattern | None
    with_label: str | None
    categories: tuple[str, ...] | None  # replace
    add: tuple[str, ...]
    harmful: Any
    why: str

    def applies(self, text: str, present: set[str]) -> bool:
        if self.with_label is not None and self.with_label not in present:
            return False
        return self.pattern is None or bool(self.pattern.search(text or ""))


def _norm_label(label: str) -> str:
    return " ".join(str(label).split()).casefold()


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


class LabelMapping:
    """One source label set's crosswalk to the taxonomy (a parsed ``mappings/<label_set>.yaml``)."""

    def __init__(self, label_set: str, source: str, entries: dict[str, _Entry], rules: list[_Rule], path: Path,
                 problems: list[str]):
        self.label_set = label_set
        self.source = source
        self.entries = entries
        self.rules = rules
        self.path = path
        self.problems = problems  # found while parsing (bad regex, bad types); reported by validate()
        self._by_norm = {_norm_label(k): k for k in entries}

    @classmethod
    def from_file(cls, path: Path) -> "LabelMapping":
        data = _read_yaml(path)
        problems: list[str] = []
        where = path.name
        if not isinstance(data.get("labels"), dict) or not data["labels"]:
            raise TaxonomyError(f"{path}: 'labels' must be a non-empty mapping of label -> {{categories, harmful}}")
        entries: dict[str, _Entry] = {}
        for label, spec in data["labels"].items():
            spec = spec if spec is not None else {}
            if not isinstance(spec, dict):
                problems.append(f"{where}: label {label!r} must map to {{categories: [...], harmful: ...}}")
                continue
            harmful = spec.get("harmful", _ABSENT)
            if harmful is not _ABSENT and harmful not in (True, False, None):
                problems.append(f"{where}: label {label!r}: harmful must be true, false or null, not {harmful!r}")
            entries[str(label)] = _Entry(tuple(_as_list(spec.get("categories"))), harmful, spec.get("attack"))
        rules: list[_Rule] = []
        for i, spec in enumerate(data.get("rules") or []):
            if not isinstance(spec, dict) or "label" not in spec:
                problems.append(f"{where}: rule {i + 1} must be a mapping with a 'label'")
                continue
            pattern = None
            if spec.get("text_matches"):
                try:
                    pattern = re.compile(str(spec["text_matches"]))
                except re.error as exc:
                    problems.append(f"{where}: rule {i + 1}: text_matches does not compile: {exc}")
                    continue
            if "categories" not in spec and "add" not in spec and "harmful" not in spec:
                problems.append(f"{where}: rule {i + 1} changes nothing (give categories, add or harmful)")
            rules.append(_Rule(tuple(_as_list(spec["label"])), pattern, spec.get("with_label"),
                               tuple(_as_list(spec["categories"])) if "categories" in spec else None,
                               tuple(_as_list(spec.get("add"))), spec.get("harmful", _ABSENT), str(spec.get("why", ""))))
        label_set = str(data.get("label_set") or path.stem)
        if label_set != path.stem:
            problems.append(f"{where}: label_set {label_set!r} differs from the file name {path.stem!r}")
        return cls(label_set, str(data.get("source", "")), entries, rules, path, problems)

    def _resolve(self, label: str) -> str | None:
        if label in self.entries:
            return label
        return self._by_norm.get(_norm_label(label))

    def map(self, labels: Iterable[str], text: str | None = None) -> MappedLabels:
        """Map a row's source labels (and its text, for the refinement rules) to taxonomy dimensions."""
        present: list[str] = []
        unknown: list[str] = []
        for label in labels:
            if label is None or not str(label).strip():
                continue
            key = self._resolve(str(label))
            if key is None:
                if label not in unknown:
                    unknown.append(str(label))
            elif key not in present:
                present.append(key)
        names = set(present)
        categories: set[str] = set()
        verdicts: list[Any] = [None] * len(unknown)  # an unknown label cannot say the row is safe
        attack = None
        for key in present:
            entry = self.entries[key]
            cats, harmful, replaced = set(entry.categories), entry.harmful, False
            for rule in self.rules:
                if key not in rule.labels or not rule.applies(text or "", names):
                    continue
                if rule.categories is not None and not replaced:
                    cats, replaced = set(rule.categories), True
                cats |= set(rule.add)
                if rule.harmful is not _ABSENT:
                    harmful = rule.harmful
            categories |= cats
            if harmful is not _ABSENT:
                verdicts.append(harmful)
            attack = attack or entry.attack
        if any(v is True for v in verdicts):
            prompt_harmful: bool | None = True
        elif verdicts and all(v is False for v in verdicts):
            prompt_harmful = False
        else:
            prompt_harmful = None
        categories.discard(SAFE)
        return MappedLabels(sorted(categories), prompt_harmful, attack, unknown)

    def validate(self, known_ids: set[str]) -> list[str]:
        problems = list(self.problems)
        where = self.path.name
        for label, entry in self.entries.items():
            for cat in entry.categories:
                if cat not in known_ids:
                    problems.append(f"{where}: label {label!r} maps to unknown category {cat!r}")
        for i, rule in enumerate(self.rules):
            for label in rule.labels:
                if label not in self.entries:
                    problems.append(f"{where}: rule {i + 1} refers to label {label!r}, which is not in 'labels'")
            if rule.with_label is not None and rule.with_label not in self.entries:
                problems.append(f"{where}: rule {i + 1}: with_label {rule.with_label!r} is not in 'labels'")
            for cat in (rule.categories or ()) + rule.add:
                if cat not in known_ids:
                    problems.append(f"{where}: rule {i + 1} uses unknown category {cat!r}")
        return problems


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaxonomyError(f"{path}: file not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TaxonomyError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TaxonomyError(f"{path}: expected a YAML mapping at the top level")
    return data


def _dimension(spec: Any, where: str) -> Dimension:
    if not isinstance(spec, dict):
        raise TaxonomyError(f"{where}: each dimension must be a mapping, got {spec!r}")
    values: dict[str, Any] = {}
    for name in Dimension.__dataclass_fields__:
        if name.startswith("examples_"):
            raw = spec.get(name) or []
            if not isinstance(raw, list):
                raise TaxonomyError(f"{where}: dimension {spec.get('id')!r}: {name} must be a list of strings")
            values[name] = tuple(str(x).strip() for x in raw if x is not None and str(x).strip())
        else:
            values[name] = str(spec.get(name) or "").strip()
    return Dimension(**values)


@dataclass
class Taxonomy:
    path: Path
    version: str
    safe: Dimension
    dimensions: list[Dimension]
    _mappings: dict[str, LabelMapping] = field(default_factory=dict, repr=False)
    _load_problems: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def load(cls, path: Path | str | None = None) -> "Taxonomy":
        """Load a taxonomy directory (None = the default one shipped with curate)."""
        root = Path(path) if path is not None else default_path()
        if not root.is_dir():
            raise TaxonomyError(f"{root}: taxonomy directory not found")
        file = root / "dimensions.yaml"
        data = _read_yaml(file)
        if not isinstance(data.get("dimensions"), list) or not data["dimensions"]:
            raise TaxonomyError(f"{file}: 'dimensions' must be a non-empty list")
        if not isinstance(data.get("safe"), dict):
            raise TaxonomyError(f"{file}: 'safe' (the S00 entry) is missing")
        specs = [dict(data["safe"]), *[dict(d) if isinstance(d, dict) else d for d in data["dimensions"]]]
        examples = root / "examples.yaml"
        extra_problems: list[str] = []
        if examples.is_file():  # optional seed examples, kept apart so dimensions.yaml stays readable
            by_id = _read_yaml(examples)
            known = {s.get("id") for s in specs if isinstance(s, dict)}
            for dim_id, langs in by_id.items():
                if dim_id not in known:
                    extra_problems.append(f"examples.yaml: unknown dimension {dim_id!r}")
                    continue
                if not isinstance(langs, dict):
                    extra_problems.append(f"examples.yaml: {dim_id} must map en/zh to lists of examples")
                    continue
                spec = next(s for s in specs if isinstance(s, dict) and s.get("id") == dim_id)
                for lang in ("en", "zh"):
                    spec[f"examples_{lang}"] = list(spec.get(f"examples_{lang}") or []) + list(langs.get(lang) or [])
        tax = cls(root, str(data.get("version", "")), _dimension(specs[0], str(file)),
                  [_dimension(d, str(file)) for d in specs[1:]])
        tax._load_problems = extra_problems
        return tax

    @cached_property
    def _by_id(self) -> dict[str, Dimension]:
        return {d.id: d for d in [self.safe, *self.dimensions]}

    @property
    def harm_ids(self) -> list[str]:
        return [d.id for d in self.dimensions]

    @property
    def all_ids(self) -> list[str]:
        """S00 first, then the harm dimensions: the label space of the classifier."""
        return [self.safe.id, *self.harm_ids]

    def get(self, id: str) -> Dimension:
        try:
            return self._by_id[id]
        except KeyError:
            raise KeyError(f"unknown taxonomy dimension {id!r} (known: {', '.join(self._by_id)})") from None

    @cached_property
    def _candidates(self) -> dict[str, Any]:
        """candidates.yaml (the catch-all dimension and the coarse source labels), {} when absent."""
        file = self.path / "candidates.yaml"
        return _read_yaml(file) if file.is_file() else {}

    @property
    def generic(self) -> list[str]:
        """The catch-all dimension(s) (S05): predicted only when no specific dimension is close."""
        return [str(d) for d in self._candidates.get("generic") or []]

    def coarse_labels(self) -> dict[tuple[str, str], list[str]]:
        """(source, source label) -> the candidate dimensions of a row with that coarse label."""
        sets = self._candidates.get("sets") or {}
        return {(str(source), str(label)): [str(d) for d in sets.get(name) or []]
                for source, labels in (self._candidates.get("coarse") or {}).items()
                for label, name in (labels or {}).items()}

    def _candidate_problems(self, known: set[str]) -> list[str]:
        sets = self._candidates.get("sets") or {}
        problems = [f"candidates.yaml: generic dimension {d!r} is not a harm dimension"
                    for d in self.generic if d not in known or d == self.safe.id]
        problems += [f"candidates.yaml: set {name!r}: unknown dimension {d!r}"
                     for name, dims in sets.items() for d in dims or [] if d not in known or d == self.safe.id]
        problems += [f"candidates.yaml: {source} / {label!r}: unknown set {name!r}"
                     for source, labels in (self._candidates.get("coarse") or {}).items()
                     for label, name in (labels or {}).items() if name not in sets]
        return problems

    def label_sets(self) -> list[str]:
        folder = self.path / "mappings"
        return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []

    def mapping(self, label_set: str) -> LabelMapping:
        if label_set not in self._mappings:
            file = self.path / "mappings" / f"{label_set}.yaml"
            if not file.is_file():
                raise TaxonomyError(f"no mapping for label set {label_set!r}: {file} does not exist "
                                    f"(available: {', '.join(self.label_sets()) or 'none'})")
            self._mappings[label_set] = LabelMapping.from_file(file)
        return self._mappings[label_set]

    def validate(self) -> list[str]:
        """Problems that make the taxonomy unusable or ambiguous; [] when it is fine."""
        problems: list[str] = list(self._load_problems)
        ids = [d.id for d in [self.safe, *self.dimensions]]
        keys = [d.key for d in [self.safe, *self.dimensions]]
        for kind, values in (("id", ids), ("key", keys)):
            for value in sorted({v for v in values if values.count(v) > 1}):
                problems.append(f"dimensions.yaml: duplicate {kind} {value!r}")
        for d in [self.safe, *self.dimensions]:
            label = d.id or d.key or "?"
            if not d.id or not d.key:
                problems.append(f"dimensions.yaml: dimension {label!r} needs an id and a key")
            for name in _TEXT_FIELDS:
                if not getattr(d, name):
                    problems.append(f"dimensions.yaml: dimension {label} has no {name}")
                elif name.endswith("_zh") and not _CJK.search(getattr(d, name)):
                    problems.append(f"dimensions.yaml: dimension {label}: {name} has no Chinese text")
            if d.response_mode not in RESPONSE_MODES:
                problems.append(f"dimensions.yaml: dimension {label}: response_mode {d.response_mode!r} "
                                f"is not one of {', '.join(RESPONSE_MODES)}")
        if self.safe.id in self.harm_ids:
            problems.append(f"dimensions.yaml: the safe id {self.safe.id!r} is also a harm dimension")
        known = set(self.harm_ids) | {self.safe.id}
        problems += self._candidate_problems(known)
        for label_set in self.label_sets():
            try:
                problems += self.mapping(label_set).validate(known)
            except TaxonomyError as exc:
                problems.append(str(exc))
        return problems


def validate_taxonomy(path: Path | str | None = None) -> list[str]:
    """Every problem in a taxonomy directory (None = the default); [] when valid. Used by `curate taxonomy validate`."""
    try:
        return Taxonomy.load(path).validate()
    except TaxonomyError as exc:
        return [str(exc)]
