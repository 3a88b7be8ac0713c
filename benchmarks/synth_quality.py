"""Pass rate of the embedded model's answers: how many sampled quickstart rows pass every synthesize filter.

    python benchmarks/synth_quality.py [--sample 48] [--max-tokens 1024] [--no-grammar] [--n-candidates 1]
                                       [--dump rows.json]

Runs the quickstart recipe up to classify with model calls off (the rows a real run would send), then the
synthesize stage on a stratified sample of them (language x goal x dimension, the stage's own sampler)
with the embedded model, exactly as `make quickstart` would but on a larger sample. Prints, per language
and goal, the rows sent, kept and the pass rate, then the drop reasons; `--dump` writes every row's prompt,
reasoning, answer and drop reason (raw answer for dropped ones) for people to read. The issue's target is
a pass rate of at least 70% in both languages. `--no-grammar` measures the same sample without the shape
grammar (the baseline the grammar is compared with).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def classified_rows(work: Path):
    """The quickstart's records after classify (model calls off: nothing is synthesized yet)."""
    from curate.pipeline import run_pipeline
    from curate.store import RunStore

    before = os.environ.get("OPENAI_BASE_URL")
    os.environ["OPENAI_BASE_URL"] = "off"
    try:
        run_pipeline(ROOT / "pipelines" / "quickstart.yaml", run_dir=work / "run", to_stage="classify",
                     log=lambda m: None)
    finally:  # the user's own setting back as it was
        if before is None:
            del os.environ["OPENAI_BASE_URL"]
        else:
            os.environ["OPENAI_BASE_URL"] = before
    return RunStore.existing(work / "run").read_stage(3, "classify")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=48)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--no-grammar", action="store_true")
    parser.add_argument("--n-candidates", type=int, default=1, help="answers per row; the best passing one is kept")
    parser.add_argument("--template-version", default=None, help="synthesis templates to use (default: the stage's)")
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--cache-dir", type=Path, help="keep the answers here: a re-run (e.g. after a filter "
                        "change) sends no request again; default: no cache")
    args = parser.parse_args()

    from curate import records
    from curate.llm.local.endpoint import launch
    from curate.llm.local.server import stop_pid
    from curate.stage import StageContext
    from curate.synthesize import STAGE, SynthesizeOptions

    with tempfile.TemporaryDirectory() as tmp:
        df = classified_rows(Path(tmp))
        info = launch(detached=False, log=lambda m: print(m, file=sys.stderr))
        try:
            os.environ["CURATE_BENCH_KEY"] = info.api_key
            opts = SynthesizeOptions(base_url=info.base_url, model=info.model, api_key_env="CURATE_BENCH_KEY",
                                     concurrency=info.slots, max_tokens=args.max_tokens, sample=args.sample,
                                     shape_grammar=not args.no_grammar, timeout=3600, cache=args.cache_dir is not None,
                                     n_candidates=args.n_candidates,
                                     **({"template_version": args.template_version} if args.template_version else {}))
            ctx = StageContext(stage="synthesize", work_dir=args.cache_dir or Path(tmp) / "cache",
                               log=lambda m: print(m, file=sys.stderr))
            started = time.monotonic()
            out = STAGE.run(df, opts, ctx)
            seconds = time.monotonic() - started
        finally:
            stop_pid(info.pid)

    rows = []
    for row in out.select("lang", "prompt", "reasoning", "response", "drop_reason", "meta").iter_rows(named=True):
        m = records.load_meta(row["meta"]).get("synthesize", {})
        if m.get("status") in ("synthesized", "rejected", "failed"):
            rows.append({**row, "goal": m.get("goal"), "status": m["status"], "meta": m})
    by = Counter((r["lang"], r["goal"]) for r in rows)
    kept = Counter((r["lang"], r["goal"]) for r in rows if r["status"] == "synthesized")
    print(f"{len(rows)} rows sent in {seconds:.0f} s ({seconds / max(len(rows), 1):.1f} s/row), grammar "
          f"{'off' if args.no_grammar else 'on'}, max_tokens {args.max_tokens}, {args.n_candidates} candidate(s) per row\n")
    print("| language | goal | sent | kept | pass rate |\n|---|---|---|---|---|")
    for key in sorted(by):
        print(f"| {key[0]} | {key[1]} | {by[key]} | {kept[key]} | {kept[key] / by[key]:.0%} |")
    for lang in sorted({k[0] for k in by}):
        sent = sum(v for k, v in by.items() if k[0] == lang)
        ok = sum(v for k, v in kept.items() if k[0] == lang)
        print(f"| **{lang}** | all | {sent} | {ok} | **{ok / sent:.0%}** |")
    print("\ndrop reasons:", dict(Counter(r["drop_reason"] for r in rows if r["drop_reason"]).most_common()))
    if args.dump:
        args.dump.write_text(json.dumps([{k: r[k] for k in ("lang", "goal", "status", "prompt", "reasoning",
                                                             "response", "drop_reason")}
                                         | {"raw": [c.get("raw") for c in r["meta"].get("candidates", [])]}
                                         for r in rows], ensure_ascii=False, indent=1))
        print(f"wrote {args.dump}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
