"""SIGKILL one Dask worker process while a stage runs on the cluster (used by the test suite and `make chaos`).

The recipe is the quickstart with classify on fastText alone, so the Dask run can be compared with the
local engine column for column (the sentence encoder is not batch-invariant; see docs/scale-out.md).
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import yaml

from curate.engine import DaskSettings, EngineSettings
from curate.pipeline import run_pipeline

QUICKSTART = Path(__file__).resolve().parents[2] / "pipelines" / "quickstart.yaml"


def fasttext_quickstart(folder: Path) -> Path:
    """The quickstart recipe (absolute paths) with classify on fastText alone, written into ``folder``."""
    recipe = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    for item in recipe["stages"]:
        (name, options), = item.items()
        for source in options.get("sources", []) if name == "collect" else []:
            source["path"] = str(QUICKSTART.parent / source["path"])
        if name == "dedup":
            options["against"] = [str(QUICKSTART.parent / p) for p in options["against"]]
        if name == "classify":
            item[name] = {"embed_band": 0}
        if name == "synthesize":  # no model calls (without an endpoint the run would start the embedded model)
            item[name] = {**(options or {}), "base_url": "off"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "quickstart-fasttext.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return path


def kill_a_worker_mid_stage(recipe: Path, run_dir: Path, *, stage: str = "classify", shard_rows: int = 100,
                            timeout: float = 600) -> dict:
    """Run ``recipe`` up to ``stage`` on a fresh 2-worker LocalCluster (127.0.0.1); when the stage's first shard
    is written, SIGKILL one worker process. Returns what happened; the cluster is stopped in every case."""
    import distributed

    shards = run_dir / "cache" / "shards"
    failures: list[BaseException] = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster:
        with distributed.Client(cluster) as client:
            pids = client.run(os.getpid)  # worker address -> process id
        settings = EngineSettings(engine="dask", dask=DaskSettings(scheduler_address=cluster.scheduler_address,
                                                                   shard_rows=shard_rows))

        def run() -> None:
            try:
                run_pipeline(recipe, run_dir=run_dir, to_stage=stage, engine=settings, log=lambda m: None)
            except BaseException as exc:  # reported to the caller
                failures.append(exc)

        runner = threading.Thread(target=run)
        runner.start()
        victim, done, total = sorted(pids.values())[0], 0, 0
        try:
            deadline = time.monotonic() + timeout
            while (not list(shards.glob(f"{stage}-*/out-*.parquet")) and runner.is_alive()
                   and time.monotonic() < deadline):
                time.sleep(0.01)
            done = len(list(shards.glob(f"{stage}-*/out-*.parquet")))
            total = len(list(shards.glob(f"{stage}-*/in-*.parquet")))
            os.kill(victim, signal.SIGKILL)
        finally:
            runner.join(timeout=timeout)
        try:
            os.kill(victim, 0)
            victim_gone = False
        except ProcessLookupError:
            victim_gone = True
    return {"killed pid": victim, "victim gone": victim_gone, "shards written at the kill": done,
            "shards": total, "failures": failures, "finished": not runner.is_alive() and not failures}
