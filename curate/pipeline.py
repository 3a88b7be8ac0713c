"""The pipeline runner: runs stages in order, skips finished ones, re-runs what changed and all after it.

A stage is skipped when its manifest holds the same config hash and the same input fingerprint. The
input fingerprint of a stage chains the previous stage's output fingerprint and config hash, so a
changed stage re-runs itself and every stage downstream.
"""
from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import polars as pl
import xxhash

from curate import __version__, funnel, records
from curate.config import ConfigError, StageSpec, load_pipeline
from curate.engine import EngineSettings, EngineUnavailable, open_engine
from curate.stage import Stage, StageContext
from curate.contract import StageFailed, run_stage
from curate.store import (SHARD_ROWS, QuarantineBuffer, RunStore, config_hash, fingerprint_files, read_shards,
                          read_shards_derived, redact, shard_paths)
from curate.streaming import run_streamed, write_checked


@dataclass
class RunResult:
    run_dir: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    funnel: funnel.Funnel | None = None
    final_dir: Path | None = None  # the last stage's folder
    _final: pl.DataFrame | None = field(default=None, repr=False)

    @property
    def final(self) -> pl.DataFrame | None:
        """The last stage's records, read when first asked for: the run itself never holds them all."""
        if self._final is None and self.final_dir is not None:
            self._final = read_shards(self.final_dir)
        return self._final


def taxonomy_fingerprint(path: Path | None) -> str:
    from curate.taxonomy import default_path

    root = Path(path) if path else default_path()
    return fingerprint_files([p for p in root.rglob("*") if p.is_file()]) if root.exists() else "none"


def stage_config_hash(spec: StageSpec, taxonomy_fp: str) -> str:
    """Everything that decides a stage's output besides its input: its options (secrets redacted: a new key
    re-runs nothing) and what they resolve to at run time (an endpoint and model from the environment)."""
    resolved = spec.options.run_fingerprint() if hasattr(spec.options, "run_fingerprint") else {}
    return config_hash({"stage": spec.name, "options": redact(spec.options.model_dump(mode="json")),
                        **({"resolved": resolved} if resolved else {}), "taxonomy": taxonomy_fp, "curate": __version__})


def input_fingerprint(spec: StageSpec, previous: dict[str, Any] | None) -> str:
    """What a stage reads: the previous stage's output (chained with its config) plus any files its options
    name (collect's sources, dedup's eval sets), so editing such a file re-runs the stage."""
    files = spec.options.input_files() if hasattr(spec.options, "input_files") else []
    files_fp = fingerprint_files(files) if files else ""
    if spec.stage.creates_rows:
        return fingerprint_files(files)
    assert previous is not None
    return xxhash.xxh3_128_hexdigest(f"{previous['output_fingerprint']}:{previous['config_hash']}:{files_fp}".encode())


def check_order(specs: list[StageSpec]) -> None:
    """No stage reads a fact that only a later stage of the pipeline writes (it would read nulls)."""
    names = [s.name for s in specs]
    for i, spec in enumerate(specs):
        for column in spec.stage.reads:
            writers = records.FACTS.get(column, ((),))[0]
            later = [w for w in writers if w in names[i + 1:]]
            if later and not any(w in names[:i] for w in writers):
                raise ConfigError(f"stage {spec.name} reads {column!r}, which {later[0]} writes, but {later[0]} "
                                  f"runs after {spec.name}: put {later[0]} first")


@dataclass
class FilesResult:
    """What a single-stage run on files produced: how many records, and where its side files went."""

    rows: int
    quarantined: int
    quarantine_path: Path | None
    funnel: funnel.Funnel


SCRATCH_COMPRESSION = "lz4"  # a single-stage run's scratch shards: read once, then removed


def run_on_files(stage: Stage, in_paths: list[Path], out_path: Path | None, options: Any, *,
                 taxonomy: Path | None = None, cache_dir: Path | None = None, log=print,
                 engine: EngineSettings | None = None, shard_rows: int = SHARD_ROWS) -> FilesResult:
    """The runner on one stage: read records from files, run the stage under its contract, write the records to
    ``out_path`` and, beside it, ``<name>.quarantine.jsonl`` and ``<name>.stats.json``. ``engine`` says where the
    stage runs (default: this process).

    Input of at most ``shard_rows`` rows runs as one frame. Larger input is written as parquet shards to a scratch
    folder and the stage runs on them as in a pipeline (``run_streamed``: shard by shard, or on the columns it
    declares), so it is never one frame unless the stage needs every row at once; so do stages that create rows.
    The output is written a shard at a time, and the scratch folder is removed however the run ends."""
    import tempfile

    from curate.io import iter_records, sidecar_path, write_record_frames
    from curate.store import read_shard, shard_writer, write_json, write_quarantine

    anchor = out_path if out_path is not None else (in_paths[0] if in_paths else Path("."))
    work_dir = cache_dir or anchor.parent / ".curate-cache"
    work_dir.mkdir(parents=True, exist_ok=True)
    quarantine = QuarantineBuffer(stage.name)
    frames = (frame for path in in_paths for frame in iter_records(path))
    head = [] if stage.creates_rows else _up_to(frames, shard_rows)
    with tempfile.TemporaryDirectory(prefix=f"{stage.name}-", dir=work_dir) as scratch, \
            open_engine(engine, log) as opened:
        ctx = StageContext(stage=stage.name, work_dir=work_dir, taxonomy_path=taxonomy, quarantine=quarantine,
                           log=log, engine=opened)
        if head and sum(f.height for f in head) <= shard_rows:  # fits one shard: in memory
            out = run_stage(stage, pl.concat(head, how="vertical"), options, ctx)
            del head
            outputs: Any = [out]
            facts = out.select(funnel.FACTS)
        else:
            in_dir = None
            if not stage.creates_rows:
                in_dir = Path(scratch) / "in"
                with shard_writer(in_dir, shard_rows=shard_rows, compression=SCRATCH_COMPRESSION) as staged:
                    for _ in write_checked(itertools.chain(head, frames), staged, f"input of {stage.name}"):
                        pass
                del head
            out_dir = Path(scratch) / "out"
            with shard_writer(out_dir, shard_rows=shard_rows, compression=SCRATCH_COMPRESSION) as writer:
                run_streamed(stage, options, ctx, in_dir, writer)
            outputs = (read_shard(p) for p in shard_paths(out_dir))
            facts = read_shards_derived(shard_paths(out_dir), funnel.FACTS)
        if out_path is not None:
            write_record_frames(outputs, out_path)
            log(f"wrote {facts.height:,} records to {out_path}")
    qpath = write_quarantine(sidecar_path(anchor, "quarantine.jsonl"), quarantine.rows) if quarantine.rows else None
    if qpath is not None:
        log(f"quarantined {len(quarantine.rows):,} input lines: {qpath}")
    if ctx.stats and out_path is not None:
        write_json(sidecar_path(anchor, "stats.json"), ctx.stats)
    return FilesResult(facts.height, len(quarantine.rows), qpath,
                       funnel.compute(facts, quarantined=len(quarantine.rows)))


def _up_to(frames: Iterator[pl.DataFrame], rows: int) -> list[pl.DataFrame]:
    """Frames taken from ``frames`` until they hold more than ``rows`` rows, or until there are no more."""
    taken: list[pl.DataFrame] = []
    count = 0
    for frame in frames:
        taken.append(frame)
        count += frame.height
        if count > rows:
            break
    return taken


def run_pipeline(path: str | Path, *, run_dir: str | Path | None = None, from_stage: str | None = None,
                 to_stage: str | None = None, force: bool = False, log=print,
                 engine: EngineSettings | None = None) -> RunResult:
    """Run the pipeline; the embedded model, if a stage needs it, lives exactly as long as those stages.
    ``engine`` replaces the file's engine settings (the CLI's --engine/--scheduler)."""
    from curate.llm.local import LocalSession

    with LocalSession(log) as session, _sigterm_as_interrupt():
        return _run_pipeline(path, run_dir=run_dir, from_stage=from_stage, to_stage=to_stage, force=force, log=log,
                             session=session, engine=engine)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` (stopping the embedded server) runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def uses_local_model(spec: StageSpec) -> bool:
    from curate.llm import LLMOptions

    opts = spec.options
    return isinstance(opts, LLMOptions) and opts.uses_llm() and opts.is_local()


def _run_pipeline(path, *, run_dir, from_stage, to_stage, force, log, session, engine=None) -> RunResult:
    config, specs, raw = load_pipeline(path)
    check_order(specs)
    names = [s.name for s in specs]
    for opt, value in (("--from", from_stage), ("--to", to_stage)):
        if value is not None and value not in names:
            raise ConfigError(f"{path}: {opt} {value!r} is not a stage of this pipeline ({', '.join(names)})")
    store = RunStore(Path(run_dir) if run_dir else (config.run_dir or Path("runs") / config.name))
    with store.locked():  # held for the whole run: a second run into this folder refuses, naming our PID
        with open_engine(engine or config.engine_settings(), log) as opened:
            return _run_locked(store, config, specs, raw, from_stage, to_stage, force, log, session, opened)


def _run_locked(store: RunStore, config, specs: list[StageSpec], raw: dict[str, Any], from_stage: str | None,
                to_stage: str | None, force: bool, log, session, engine) -> RunResult:
    names = [s.name for s in specs]
    store.write_config(raw)
    result = RunResult(run_dir=store.root)
    tax_fp = taxonomy_fingerprint(config.taxonomy)
    from_index = names.index(from_stage) if from_stage else None
    to_index = names.index(to_stage) if to_stage else len(specs) - 1
    previous: dict[str, Any] | None = None
    upstream: dict[str, Path] = {}
    quarantined = 0
    model_stages = [i for i, spec in enumerate(specs[: to_index + 1]) if uses_local_model(spec)]
    for i, spec in enumerate(specs[: to_index + 1]):
        if model_stages and i > model_stages[-1]:
            session.close()  # no later stage needs the embedded model: free its memory and cores now
        index = i + 1
        chash = stage_config_hash(spec, tax_fp)
        in_fp = input_fingerprint(spec, previous)
        manifest = store.manifest(index, spec.name)
        forced = force or spec.stage.always_run or (from_index is not None and i >= from_index)
        if not forced and manifest and manifest.get("config_hash") == chash and manifest.get("input_fingerprint") == in_fp:
            log(f"[{spec.name}] unchanged: skipped ({manifest['rows_out']:,} rows)")
            result.skipped.append(spec.name)
            previous = manifest
            upstream[spec.name] = store.stage_dir(index, spec.name)
            quarantined += manifest.get("quarantined", 0)
            continue
        quarantine = QuarantineBuffer(spec.name)
        ctx = StageContext(stage=spec.name, work_dir=store.cache_dir, run_dir=store.root,
                           taxonomy_path=config.taxonomy, quarantine=quarantine, log=log, upstream=dict(upstream),
                           engine=engine)
        started = time.time()
        log(f"[{spec.name}] running")
        in_dir = None if spec.stage.creates_rows else store.stage_dir(index - 1, specs[i - 1].name)
        with store.stage_writer(index, spec.name) as writer:  # the stage's folder appears only if it succeeds
            try:
                counts = run_streamed(spec.stage, spec.options, ctx, in_dir, writer)
            except (records.SchemaError, StageFailed, EngineUnavailable):
                raise
            except Exception as exc:
                raise StageFailed(f"stage {spec.name} failed: {type(exc).__name__}: {exc}") from exc
            seconds = time.time() - started
            writer.manifest = {
                "stage": spec.name, "index": index, "curate": __version__,
                "config_hash": chash, "input_fingerprint": in_fp,
                "rows_in": counts.rows_in, "rows_out": counts.rows_out,
                "drop_reasons": dict(counts.drop_reasons), "new_drops": {k: v for k, v in counts.new_drops.items() if v},
                "quarantined": len(quarantine.rows), "quarantine_reasons": quarantine.counts(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "seconds": round(seconds, 3),
                "stats": ctx.stats,
            }
            store.write_quarantine(spec.name, quarantine.rows)
        quarantined += len(quarantine.rows)
        log(f"[{spec.name}] done: {counts.rows_out:,} rows in {seconds:.1f}s" +
            (f", {len(quarantine.rows):,} lines quarantined" if quarantine.rows else ""))
        result.ran.append(spec.name)
        previous = writer.manifest
        upstream[spec.name] = store.stage_dir(index, spec.name)
        # A re-run stage invalidates everything after it through the chained input fingerprint.
    result.final_dir = store.stage_dir(to_index + 1, specs[to_index].name)
    collected = store.manifest(1, specs[0].name)["rows_out"]
    facts = read_shards_derived(shard_paths(result.final_dir), funnel.FACTS)
    result.funnel = funnel.compute(facts, quarantined=quarantined, collected=collected)
    if config.report and to_index == len(specs) - 1:
        _write_report(store.root, log)
    return result


def _write_report(run_dir: Path, log) -> None:
    from curate.report import write_report

    path = write_report(run_dir)
    log(f"report: {path}")
