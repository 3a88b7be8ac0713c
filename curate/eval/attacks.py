"""Jailbreak wrappers: the bundled templates (curate/data/eval/jailbreaks.yaml) applied to harmful items."""
from __future__ import annotations

from importlib import resources

import polars as pl
import yaml

from curate.config import ConfigError


def templates() -> dict[str, dict[str, str]]:
    """template id -> {"en": text, "zh": text}; ``{prompt}`` marks where the harmful prompt goes."""
    text = resources.files("curate").joinpath("data", "eval", "jailbreaks.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def wrap(items: pl.DataFrame, attacks: list[str]) -> pl.DataFrame:
    """One wrapped copy of every item per attack: ``attack`` set, ``prompt`` wrapped, id ``<id>#<attack>``."""
    known = templates()
    names = sorted(known) if attacks == ["all"] else attacks
    unknown = [a for a in names if a not in known]
    if unknown:
        raise ConfigError(f"unknown jailbreak template {unknown[0]!r} (known: {', '.join(sorted(known))}, all)")
    parts = []
    for name in names:
        en, zh = known[name]["en"], known[name]["zh"]
        wrapped = pl.when(pl.col("lang") == "zh").then(pl.lit(zh)).otherwise(pl.lit(en)) \
            .str.replace("{prompt}", pl.col("base_prompt"), literal=True)
        parts.append(items.with_columns(wrapped.alias("prompt"), pl.lit(name).alias("attack"),
                                        (pl.col("item_id") + "#" + name).alias("item_id")))
    return pl.concat(parts, how="vertical") if parts else items.clear()
