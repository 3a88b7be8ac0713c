"""License ordering: which source license binds the exported dataset.

One ordered list from least to most restrictive. A dataset mixing sources carries the most restrictive
one; any non-commercial (``-nc``) source is called out by name. An unknown or unrecognised license is
treated as the most restrictive (``other``): a missing license is not permission.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

# Least to most restrictive. Ids are the Hugging Face card license identifiers.
ORDER = (
    "cc0-1.0", "pddl", "unlicense", "mit", "bsd-2-clause", "bsd-3-clause", "apache-2.0",
    "cc-by-3.0", "cc-by-4.0", "odc-by", "cc-by-sa-3.0", "cc-by-sa-4.0", "odbl", "gpl-3.0",
    "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0",
    "other",
)
RANK = {name: i for i, name in enumerate(ORDER)}
ALIASES = {"apache": "apache-2.0", "apache-2": "apache-2.0", "cc0": "cc0-1.0", "public-domain": "cc0-1.0",
           "cc-by": "cc-by-4.0", "cc-by-sa": "cc-by-sa-4.0", "cc-by-nc": "cc-by-nc-4.0",
           "cc-by-nc-sa": "cc-by-nc-sa-4.0", "cc-by-nc-nd": "cc-by-nc-nd-4.0", "bsd": "bsd-3-clause",
           "gpl-3": "gpl-3.0", "gplv3": "gpl-3.0"}


def normalize(value: str | None) -> str:
    """'CC BY-NC-SA 4.0', 'Apache License 2.0', 'MIT License' -> card ids; unrecognised -> 'other'."""
    if not value or not value.strip():
        return "other"
    text = value.strip().lower()
    text = re.sub(r"\b(license|licence)\b", " ", text)
    text = re.sub(r"[\s_/]+", "-", text.strip()).strip("-")
    text = re.sub(r"-+", "-", text)
    text = re.sub(r"-v?(\d)$", r"-\1.0", text) if re.search(r"-v?\d$", text) else text
    text = ALIASES.get(text, text)
    return text if text in RANK else "other"


def is_non_commercial(license_id: str) -> bool:
    return "-nc" in license_id


@dataclass
class LicenseSummary:
    license: str  # the card's license: the most restrictive among the sources
    by_source: dict[str, str] = field(default_factory=dict)  # source -> normalised license
    non_commercial: list[str] = field(default_factory=list)  # sources with a non-commercial license
    unknown: list[str] = field(default_factory=list)  # sources whose license was missing or unrecognised

    @property
    def commercial_use(self) -> bool:
        return not self.non_commercial and not self.unknown


def summarize(pairs: Iterable[tuple[str, str | None]]) -> LicenseSummary:
    """(source, source_license) per row -> the binding license and the sources to call out.

    A source whose rows disagree on the license gets its most restrictive one.
    """
    by_source: dict[str, str] = {}
    for source, license_text in pairs:
        lid = normalize(license_text)
        if source not in by_source or RANK[lid] > RANK[by_source[source]]:
            by_source[source] = lid
    binding = max(by_source.values(), key=RANK.__getitem__, default="other")
    return LicenseSummary(
        license=binding, by_source=dict(sorted(by_source.items())),
        non_commercial=sorted(s for s, lid in by_source.items() if is_non_commercial(lid)),
        unknown=sorted(s for s, lid in by_source.items() if lid == "other"))
