"""`make chaos`: try to lose or duplicate rows, and print what happened.

Sections (all run by default; `--sections` picks some, `--fast` uses fewer seeds and records):
  crash     SIGKILL inside every stage of a pipeline (several seeds), resume, compare with an uninterrupted run
  hostile   collect on random bytes, NUL bytes, a 50 MB single line, deeply nested JSON, CSV with embedded
            newlines and quotes, mixed encodings, empty files, a folder where a file was expected, a symlink loop
  endpoint  10k synthesis requests against the local OpenAI-compatible server with 20% transient failures
            (429 / 500 / dropped connections) and slow answers; then a request budget on a fresh cache
  labelstudio  the real Label Studio server killed during a push and during a pull, then restarted
  disk      a full disk and a read-only run folder (small tmpfs; needs root)
  userdata  the hostile-user audit (issue 15): export over a project folder, --run-dir /tmp-like folders, two
            runs in one folder, shared quarantine names, dead and hanging endpoints, endpoint set later,
            credentials in URLs, path-like run names, hostile values, invisible characters, zero rows;
            user files lost and secrets written must be 0
  embedded  SIGKILL of the embedded llama-server during synthesis: restart, every row accounted, no orphan,
            a re-run repeats no answered request (benchmarks/chaos_embedded.py)
  dask      SIGKILL of one Dask worker process mid-classify (LocalCluster on 127.0.0.1), compared with the local engine

Rows lost and rows duplicated must be 0; the script exits 1 otherwise.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUICKSTART = ROOT / "pipelines" / "data" / "quickstart"


# ---------------------------------------------------------------------------------------------- crash


def crash_section(tmp: Path, fast: bool) -> dict:
    from tests.chaos.crash_resume import crash_and_resume, small_pipeline
    from tests.servers.openai_compat import OpenAICompatServer

    server = OpenAICompatServer(latency=0.01).start()
    try:
        sources = [{"preset": p, "path": str(QUICKSTART / p)} for p in ("xstest", "xsafety", "star1", "harmbench",
                                                                       "advbench", "gsm8k")]
        has_model = (ROOT / "curate" / "models" / "default" / "model.json").exists()
        pipeline = small_pipeline(tmp / "crash.yaml", sources, [
            {"dedup": {}}, *([{"classify": {}}] if has_model else []),
            {"synthesize": {"base_url": server.base_url, "model": "chaos", "concurrency": 8}},
            {"balance": {"seed": 5}}, {"export": {}}])
        seeds = [1] if fast else [1, 2, 3]
        figures = crash_and_resume(pipeline, tmp / "crash", seeds=seeds, env={"OPENAI_API_KEY": "chaos"})
    finally:
        server.stop()
    return {"kills survived": figures.kills, "kills per stage": figures.per_stage, "resumes": figures.resumes,
            "resumed == uninterrupted": figures.resumed_equal, "rows lost": figures.rows_lost,
            "rows duplicated": figures.rows_duplicated, "stray temp outputs": figures.stray_temp_outputs,
            "inconsistent manifests": figures.inconsistent_manifests, "notes": figures.notes}


# ---------------------------------------------------------------------------------------------- hostile


def hostile_inputs(folder: Path, fast: bool) -> dict[str, Path]:
    """Write every kind of bad input; returns {description: path}."""
    rng = random.Random(7)
    folder.mkdir()
    made: dict[str, Path] = {}

    def put(name: str, desc: str, data: bytes) -> None:
        path = folder / name
        path.write_bytes(data)
        made[desc] = path

    for i in range(3 if fast else 10):
        put(f"random{i}.jsonl", f"random bytes #{i}", bytes(rng.getrandbits(8) for _ in range(20_000)))
    put("nul.jsonl", "NUL bytes", b'{"prompt": "a\x00b"}\n\x00\x00\x00\n{"prompt": "ok"}\n' * 100)
    big = 50 * 1024 * 1024
    put("long.jsonl", "a 50 MB single line", b'{"prompt": "' + b"x" * big + b'"}\n{"prompt": "after"}\n')
    put("nested.jsonl", "deeply nested JSON", b"[" * 200_000 + b"]" * 200_000 + b"\n" +
        b'{"prompt": {"a": ' * 5000 + b"1" + b"}" * 5000 + b"\n")
    put("quotes.csv", "CSV with embedded newlines and quotes",
        'prompt,label\n"line one\nline two",a\n"he said ""hi""",b\nunbalanced "quote,c\n"x",\n'.encode())
    put("mixed.jsonl", "mixed encodings in one file", '{"prompt": "utf8 中文"}\n'.encode() +
        '{"prompt": "gbk 中文"}\n'.encode("gbk") + '{"prompt": "latin1 café"}\n'.encode("latin-1") +
        '{"prompt": "utf16"}\n'.encode("utf-16"))
    put("empty.jsonl", "an empty file", b"")
    whole = gzip.compress(b"".join(b'{"prompt": "p%d %x"}\n' % (i, rng.getrandbits(64)) for i in range(5000)))
    put("gz_truncated.jsonl.gz", "a truncated gzip file", whole[: len(whole) // 2])
    (folder / "a_folder.jsonl").mkdir()
    (folder / "a_folder.jsonl" / "inner.jsonl").write_bytes(b'{"prompt": "inside a folder"}\n')
    made["a folder where a file was expected"] = folder / "a_folder.jsonl"
    loop = folder / "loopdir"
    loop.mkdir()
    (loop / "self").symlink_to(loop / "self")
    (loop / "ok.jsonl").write_bytes(b'{"prompt": "beside a symlink loop"}\n')
    made["a symlink loop"] = loop
    return made


def _run_measured(cmd: list[str]) -> tuple[int, float, str]:
    """Exit code, peak RSS in MB, stderr of a child process."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, stderr


def hostile_section(tmp: Path, fast: bool) -> dict:
    import polars as pl

    from curate.io import sidecar_path

    inputs = hostile_inputs(tmp / "hostile", fast)
    crashes, peak, lost, results = 0, 0.0, 0, {}
    for desc, path in inputs.items():
        out = tmp / "hostile-out" / (path.name.replace(".", "_") + ".parquet")
        out.parent.mkdir(exist_ok=True)
        code, rss, stderr = _run_measured([sys.executable, "-m", "curate.cli", "collect", "--in", str(path),
                                           "--out", str(out), "--name", "hostile", "--license", "MIT"])
        peak = max(peak, rss)
        if code != 0 or "Traceback" in stderr:
            crashes += 1
            results[desc] = f"CRASH exit {code}: {stderr[-300:]}"
            continue
        rows = pl.read_parquet(out).height
        qfile = sidecar_path(out, "quarantine.jsonl")
        quarantined = sum(1 for _ in open(qfile, encoding="utf-8")) if qfile.exists() else 0
        if path.is_file() and path.suffix == ".jsonl":
            lines = sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
            lost += max(0, lines - rows - quarantined)
        results[desc] = f"{rows} records, {quarantined} quarantined"
    return {"bad inputs tried": len(inputs), "crashes": crashes, "rows lost": lost,
            "peak memory of one collect (MB)": round(peak), "per input": results}


# ---------------------------------------------------------------------------------------------- endpoint


def endpoint_section(tmp: Path, fast: bool) -> dict:
    import polars as pl

    from curate import records
    from curate.stage import StageContext
    from curate.synthesize import STAGE, SynthesizeOptions
    from curate.taxonomy import Taxonomy
    from tests.servers.openai_compat import OpenAICompatServer

    n = 1000 if fast else 10_000
    refuse = next(d.id for d in Taxonomy.load(None).dimensions if d.response_mode == "refuse")
    df = records.conform(pl.DataFrame({
        "id": [f"r{i}" for i in range(n)], "source": ["chaos"] * n, "source_id": [str(i) for i in range(n)],
        "lang": ["en"] * n, "prompt": [f"How would someone do harmful thing number {i}?" for i in range(n)],
        "categories": [[refuse]] * n, "prompt_harmful": [True] * n}))
    server = OpenAICompatServer(latency=0.02, fail_rate=0.2, seed=11).start()
    try:
        ctx = StageContext(stage="synthesize", work_dir=tmp / "endpoint", log=lambda m: None)
        opts = SynthesizeOptions(base_url=server.base_url, model="chaos", concurrency=64, backoff_base=0.02,
                                 max_retries=6, near_duplicate_threshold=0, timeout=5)
        started = time.monotonic()
        out = STAGE.run(df, opts, ctx)
        seconds = time.monotonic() - started
        served = server.count
        status = [records.load_meta(m).get("synthesize", {}).get("status") for m in out["meta"]]
        synthesized = sum(s == "synthesized" for s in status)
        with_reason = int(out["drop_reason"].is_not_null().sum())
        unaccounted = n - synthesized - with_reason
        partial = _partial_cache_entries(tmp / "endpoint")
        # Budget: a fresh cache and at most 200 requests; the server must not see more.
        server.reset()
        budget_ctx = StageContext(stage="synthesize", work_dir=tmp / "budget", log=lambda m: None)
        budget = SynthesizeOptions(base_url=server.base_url, model="chaos", concurrency=64, backoff_base=0.02,
                                   max_retries=6, near_duplicate_threshold=0, max_requests=200)
        STAGE.run(df.head(2000), budget, budget_ctx)
        budget_seen = server.count
    finally:
        server.stop()
    return {"records": n, "seconds": round(seconds, 1), "requests served": served,
            "requests failed and recovered": ctx.stats.get("retries"), "synthesized": synthesized,
            "ended with a drop reason": with_reason, "rows lost": max(unaccounted, 0),
            "rows duplicated": out.height - out["id"].n_unique(), "partial answers in cache": partial,
            "budget 200 requests: server saw": budget_seen, "budget respected": budget_seen <= 200}


def _partial_cache_entries(work_dir: Path) -> int:
    bad = 0
    for db in work_dir.rglob("*.sqlite"):
        with sqlite3.connect(db) as conn:
            for (value,) in conn.execute("SELECT value FROM responses"):
                entry = json.loads(value)
                if entry.get("finish_reason") == "length" or not (entry.get("content") or entry.get("answer")):
                    bad += 1
    return bad


# ---------------------------------------------------------------------------------------------- label studio


def labelstudio_section(tmp: Path, fast: bool) -> dict:
    import threading

    from tests.servers.label_studio import LabelStudioServer, installed
    from curate.review.client import ReviewError, connect
    from curate.review.push import find_project, push
    from curate.taxonomy import Taxonomy
    from tests.test_review import corpus, existing_record_ids

    if not installed():
        return {"skipped": "Label Studio's venv is missing (make label-studio-env)"}
    server = LabelStudioServer(tmp / "ls")
    server.start()
    figures = {"kills survived": 0}
    try:
        n = 30 if fast else 60
        df = corpus(n)
        title = "chaos push"
        gate, killed = threading.Event(), threading.Event()

        def on_batch(done: int, total: int) -> None:
            if done == n // 3:
                gate.set()
                killed.wait(60)

        def work() -> None:
            try:
                push(connect(server.url, server.token), df, title, taxonomy=Taxonomy.load(), sample=None,
                     strategy="all", batch_size=2, on_batch=on_batch, log=lambda m: None)
            except ReviewError:
                pass

        worker = threading.Thread(target=work)
        worker.start()
        gate.wait(120)
        server.stop(kill=True)
        killed.set()
        worker.join(120)
        figures["kills survived"] += 1
        server.start()
        client = connect(server.url, server.token)
        push(client, df, title, taxonomy=Taxonomy.load(), sample=None, strategy="all", batch_size=5, log=lambda m: None)
        project = find_project(client, title)
        tasks = list(client.ls.tasks.list(project=project.id))
        ids = [t.data["record_id"] for t in tasks]
        figures.update({"tasks after killed push": len(tasks), "duplicate tasks": len(ids) - len(set(ids)),
                        "tasks lost": n - len(set(ids))})
        # Annotate everything, kill the server during a pull, restart, pull again: nothing lost.
        from curate.review.pull import pull as pull_state, state_path

        for t in tasks:
            client.ls.annotations.create(id=t.id, result=[], lead_time=1.0)
        state_file = state_path(tmp / "pull-state", title)
        puller = threading.Thread(target=lambda: _quiet(lambda: pull_state(client, project.id, state_file)))
        puller.start()
        time.sleep(0.3)
        server.stop(kill=True)
        puller.join(120)
        figures["kills survived"] += 1
        server.start()
        client = connect(server.url, server.token)
        state, _ = pull_state(client, project.id, state_file)
        got = _annotation_count(state)
        figures.update({"annotations made": len(tasks), "annotations after killed pull": got,
                        "annotations lost": len(tasks) - got})
    finally:
        server.cleanup()
    return figures


def _quiet(fn) -> None:
    try:
        fn()
    except Exception:  # the server was killed under it: that is the point
        pass


def _annotation_count(state: dict) -> int:
    return sum(len(task.get("annotations", [])) for task in state.get("tasks", {}).values())


# ---------------------------------------------------------------------------------------------- disk


def disk_section(tmp: Path, fast: bool) -> dict:
    from curate.store import read_shards

    mount = tmp / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode:
        return {"skipped": "cannot mount a tmpfs here (needs root)"}
    try:
        config = tmp / "disk.yaml"
        run_dir = mount / "run"
        config.write_text(json.dumps({"name": "disk", "report": False, "run_dir": str(run_dir), "stages": [
            {"collect": {"sources": [{"preset": "xsafety", "path": str(QUICKSTART / "xsafety")}]}}, {"dedup": {}}]}))
        run = lambda *a: subprocess.run([sys.executable, "-m", "curate.cli", "run", str(config), *a],  # noqa: E731
                                        capture_output=True, text=True)
        run("--to", "collect")
        before = read_shards(run_dir / "01-collect")
        subprocess.run(["dd", "if=/dev/zero", f"of={mount / 'fill'}", "bs=4k", "count=100000"], capture_output=True)
        full = run()
        intact_full = read_shards(run_dir / "01-collect").equals(before)
        (mount / "fill").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        ro = run("--force")
        intact_ro = read_shards(run_dir / "01-collect").equals(before)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
    def clear(proc) -> bool:  # failed, no traceback, and the last line is the one error line
        lines = proc.stderr.strip().splitlines()
        return proc.returncode != 0 and "Traceback" not in proc.stderr and bool(lines) and lines[-1].startswith("error:")

    return {"full disk: clear error": clear(full) and "No space left" in full.stderr,
            "full disk: earlier output intact": intact_full,
            "read-only: clear error": clear(ro) and "Read-only" in ro.stderr,
            "read-only: earlier output intact": intact_ro}


# ---------------------------------------------------------------------------------------------- user data


def userdata_section(tmp: Path, fast: bool) -> dict:
    from tests.chaos.hostile_user import run_cases
    from tests.servers.openai_compat import OpenAICompatServer

    server = OpenAICompatServer(latency=0.01).start()
    try:
        figures = run_cases(tmp, server.base_url)
    finally:
        server.stop()
    return {"cases tried": figures.tried, "cases passed": figures.passed, "user files lost": figures.user_files_lost,
            "secrets written": figures.secrets_written, "failures": figures.failures}


def embedded_section(tmp: Path, fast: bool) -> dict:
    from benchmarks.chaos_embedded import embedded_section as run

    return run(tmp, fast)


def dask_section(tmp: Path, fast: bool) -> dict:
    import polars as pl

    from curate.pipeline import run_pipeline
    from curate.store import RunStore
    from tests.chaos.dask_worker_kill import fasttext_quickstart, kill_a_worker_mid_stage

    recipe = fasttext_quickstart(tmp)
    run_pipeline(recipe, run_dir=tmp / "local", to_stage="classify", log=lambda m: None)
    happened = kill_a_worker_mid_stage(recipe, tmp / "dask", stage="classify", shard_rows=100)
    if not happened["finished"]:
        return {"kills survived": 0, "rows lost": "run failed", "failures": repr(happened["failures"])[:300]}
    local = RunStore.existing(tmp / "local").read_stage(3, "classify")
    dask = RunStore.existing(tmp / "dask").read_stage(3, "classify")
    return {"kills survived": 1, "shards written at the kill": f"{happened['shards written at the kill']} of "
            f"{happened['shards']}", "rows lost": local.join(dask, on="id", how="anti").height,
            "rows duplicated": dask.height - dask["id"].n_unique(),
            "equal to the local engine": dask.equals(local)}


SECTIONS = {"crash": crash_section, "hostile": hostile_section, "endpoint": endpoint_section,
            "labelstudio": labelstudio_section, "disk": disk_section, "userdata": userdata_section,
            "embedded": embedded_section, "dask": dask_section}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--fast", action="store_true", help="fewer seeds and records (what make test runs)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    report, started = {}, time.monotonic()
    with tempfile.TemporaryDirectory(prefix="curate-chaos-") as tmp:
        for name in chosen:
            t0 = time.monotonic()
            (Path(tmp) / name).mkdir()
            print(f"== {name} ...", flush=True)
            report[name] = SECTIONS[name](Path(tmp) / name, args.fast)
            report[name]["section seconds"] = round(time.monotonic() - t0, 1)
            for key, value in report[name].items():
                print(f"   {key}: {value}", flush=True)
    lost = sum(int(r.get("rows lost", 0) or 0) + int(r.get("tasks lost", 0) or 0) + int(r.get("annotations lost", 0) or 0)
               for r in report.values())
    duplicated = sum(int(r.get("rows duplicated", 0) or 0) + int(r.get("duplicate tasks", 0) or 0) for r in report.values())
    kills = sum(int(r.get("kills survived", 0) or 0) for r in report.values())
    userdata = report.get("userdata", {})
    print(f"\nchaos summary ({time.monotonic() - started:.0f}s): kills survived {kills}, bad inputs tried "
          f"{report.get('hostile', {}).get('bad inputs tried', 0)}, requests failed and recovered "
          f"{report.get('endpoint', {}).get('requests failed and recovered', 0)}, rows lost {lost}, "
          f"rows duplicated {duplicated}" + (
              f"; hostile-user cases {userdata['cases passed']}/{userdata['cases tried']} passed, user files lost "
              f"{userdata['user files lost']}, secrets written {userdata['secrets written']}" if userdata else ""))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    crashes = report.get("hostile", {}).get("crashes", 0)
    disk_ok = all(v for k, v in report.get("disk", {}).items() if k not in ("section seconds", "skipped"))
    budget_ok = report.get("endpoint", {}).get("budget respected", True)
    userdata_ok = not userdata or (userdata["cases passed"] == userdata["cases tried"] and
                                   not userdata["user files lost"] and not userdata["secrets written"])
    orphans = report.get("embedded", {}).get("orphan servers", 0)
    dask_equal = report.get("dask", {}).get("equal to the local engine", True)
    return 1 if (lost or duplicated or crashes or not disk_ok or not budget_ok or not userdata_ok or orphans
                 or not dask_equal) else 0


if __name__ == "__main__":
    sys.exit(main())
