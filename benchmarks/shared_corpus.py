"""Build a labelled records corpus from ../shared/data with curate's own collect stage (developers only).

Used by classify_bench.py and train_default_model.py. Each preset is collected separately so a missing
dataset only drops that source. ``PERMISSIVE`` lists the presets whose licences allow shipping a model
trained on them (S-Eval is CC BY-NC-SA: benchmark only).
"""
from __future__ import annotations

import gzip
import json
import sys
import tempfile
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

PRESET_DIRS = {
    "advbench": "advbench", "harmbench": "harmbench", "strongreject": "strongreject",
    "simplesafetytests": "simplesafetytests", "xstest": "xstest", "xstest_completions": "xstest",
    "openai_moderation": "openai-moderation", "multijail": "multijail", "xsafety": "xsafety",
    "safetybench": "safetybench-zh-subset", "cold": "cold", "flames": "flames-1k",
    "cvalues": "cvalues-responsibility-prompts", "star1": "star-1", "gsm8k": "gsm8k", "s_eval": "s-eval",
}
NON_COMMERCIAL = {"s_eval"}
PERMISSIVE = [p for p in PRESET_DIRS if p not in NON_COMMERCIAL]
# sources that share prompts are one family for leave-one-source-out
FAMILY = {"xstest_completions": "xstest"}


def _star1_copy(folder: Path, tmp: Path) -> Path:
    """STAR-1's 'category' is a JSON list; older collect presets expect the string form. Give them that."""
    rows = json.loads(gzip.open(folder / "STAR-1.json.gz", "rt", encoding="utf-8").read())
    for row in rows:
        if isinstance(row.get("category"), list):
            row["category"] = str(row["category"])
    out = tmp / "star1"
    out.mkdir(exist_ok=True)
    (out / "STAR-1.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return out


def build(presets: list[str], data_dir: Path = SHARED, gsm8k_limit: int = 2000, log=print) -> pl.DataFrame:
    from curate.collect import CollectOptions, run
    from curate.stage import StageContext

    if not data_dir.is_dir():
        raise SystemExit(f"{data_dir} not present: this script needs the developers' copy of the public datasets")
    frames = []
    with tempfile.TemporaryDirectory(prefix="curate-corpus-") as tmp_name:
        tmp = Path(tmp_name)
        for preset in presets:
            folder = data_dir / PRESET_DIRS[preset]
            if not folder.is_dir():
                log(f"skip {preset}: {folder} missing")
                continue
            spec = {"preset": preset, "path": str(folder)}
            if preset == "multijail":
                spec["languages"] = ["en", "zh"]
            if preset == "gsm8k":
                spec["limit"] = gsm8k_limit
            ctx = StageContext(stage="collect", work_dir=tmp, log=lambda m: None)
            try:
                df = run(pl.DataFrame(), CollectOptions(sources=[spec]), ctx)
            except AttributeError:
                if preset != "star1":
                    raise
                spec["path"] = str(_star1_copy(folder, tmp))
                df = run(pl.DataFrame(), CollectOptions(sources=[spec]), ctx)
            frames.append(df)
            log(f"{preset}: {df.height:,} records")
    return pl.concat(frames, how="vertical")


def fingerprint() -> str:
    """Hash of what decides the corpus labels: the default taxonomy's dimensions and mappings, and the collect
    code (not its examples or candidate sets: those shape training, not the collected labels)."""
    import hashlib

    h = hashlib.sha256()
    taxonomy = REPO / "taxonomy" / "default"
    files = ([taxonomy / "dimensions.yaml"] + sorted((taxonomy / "mappings").rglob("*.yaml"))
             + sorted((REPO / "curate" / "collect").rglob("*.py")))
    for f in files:
        h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def cached(presets: list[str], path: Path, log=print) -> pl.DataFrame:
    """The corpus for ``presets``, built once and kept at ``path`` (parquet); rebuilt when the mappings or the
    collect code changed since (a fingerprint beside the file), so a fixed mapping reaches the benchmark."""
    from curate.io import read_records, write_records

    stamp = path.with_suffix(".fingerprint")
    current = fingerprint()
    if path.exists() and stamp.exists() and stamp.read_text().strip() == current:
        df = read_records(path)
        if set(df["source"].unique()) >= {p for p in presets if (SHARED / PRESET_DIRS[p]).is_dir()}:
            return df.filter(pl.col("source").is_in(presets))
    elif path.exists():
        log(f"{path.name}: mappings or collect code changed, rebuilding")
    df = build(presets, log=log)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_records(df, path)
    stamp.write_text(current + "\n")
    return df


def spliced(a: pl.Series, b: pl.Series) -> pl.Series:
    """The first half of each text of ``a`` joined to the second half of the text of ``b`` at the same row: new
    prompts whose length and wording stay those of real ones."""
    return a.str.slice(0, a.str.len_chars() // 2) + b.str.slice(b.str.len_chars() // 2)


if __name__ == "__main__":
    from curate.io import write_records

    write_records(build(PERMISSIVE if "--permissive" in sys.argv else list(PRESET_DIRS)), Path(sys.argv[1]))
