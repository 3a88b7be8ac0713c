"""The Dask engine: a real distributed.LocalCluster on 127.0.0.1 (2 worker processes, one thread each).

Same output as the local engine on the quickstart (every column of every row of every stage), near-duplicates
found across shards, and a worker SIGKILLed mid-stage costing a recomputation, never a row.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from curate.engine import DaskSettings, EngineSettings, open_engine
from curate.contract import run_stage
from curate.pipeline import run_pipeline
from curate.stage import StageContext
from curate.store import RunStore
from tests.chaos.dask_worker_kill import fasttext_quickstart, kill_a_worker_mid_stage

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'curate[dask]'")
pytestmark = pytest.mark.dask

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "pipelines" / "quickstart.yaml"


def start_cluster():
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address="127.0.0.1:0")


@pytest.fixture(scope="module")
def cluster():
    with start_cluster() as running:
        yield running


OFFLINE_ENV = ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY", "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY")


@pytest.fixture
def offline(monkeypatch):
    """The quickstart's synthesize and review stay skipped, whatever the developer's shell exports."""
    for name in OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "off")  # no endpoint would start the embedded model


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> tuple[Path, Path]:
    """(recipe, run folder) of the fastText-only quickstart run by the local engine."""
    folder = tmp_path_factory.mktemp("local-engine")
    recipe = fasttext_quickstart(folder)
    with pytest.MonkeyPatch.context() as patch:
        for name in OFFLINE_ENV:
            patch.delenv(name, raising=False)
        patch.setenv("OPENAI_BASE_URL", "off")  # no endpoint would start the embedded model
        assert run_pipeline(recipe, run_dir=folder / "run", log=lambda m: None).funnel.balanced
    return recipe, folder / "run"


def dask_on(cluster, shard_rows: int) -> EngineSettings:
    return EngineSettings(engine="dask", dask=DaskSettings(scheduler_address=cluster.scheduler_address,
                                                           shard_rows=shard_rows))


def assert_same_stages(local_dir: Path, dask_dir: Path, upto: int | None = None) -> None:
    local, dask = RunStore.existing(local_dir), RunStore.existing(dask_dir)
    stages = local.finished_stages()[:upto]
    assert [s.name for s in stages] == [s.name for s in dask.finished_stages()][:len(stages)]
    for stage in stages:
        expected = local.read_stage(stage.index, stage.name)
        got = dask.read_stage(stage.index, stage.name)
        assert got.height == expected.height > 0
        assert_frame_equal(got, expected)  # every column of every row, in order
        assert got["id"].n_unique() == got.height


def test_quickstart_on_dask_equals_the_local_engine(cluster, local_run, tmp_path, offline):
    recipe, local_dir = local_run
    logs: list[str] = []
    result = run_pipeline(recipe, run_dir=tmp_path / "run", engine=dask_on(cluster, shard_rows=500), log=logs.append)
    assert result.funnel.balanced
    assert any(m.startswith(f"dask: 2 workers at {cluster.scheduler_address}") for m in logs)
    assert_same_stages(local_dir, tmp_path / "run")
    exported = sorted(p.relative_to(local_dir) for p in (local_dir / "export").rglob("*.parquet"))
    assert exported
    for name in exported:
        assert_frame_equal(pl.read_parquet(tmp_path / "run" / name), pl.read_parquet(local_dir / name))
    stats = [RunStore.existing(d).manifest(3, "classify")["stats"] for d in (local_dir, tmp_path / "run")]
    assert stats[1]["classified"] == stats[0]["classified"] and stats[1]["predicted"] == stats[0]["predicted"]
    assert not list((tmp_path / "run" / "cache" / "shards").glob("*/*")), "shard folders are removed after a stage"


def test_with_the_embedding_layer_decisions_are_equal_and_scores_within_rounding(cluster, quickstart_run, tmp_path,
                                                                                 offline):
    run_pipeline(QUICKSTART, run_dir=tmp_path / "run", to_stage="classify", engine=dask_on(cluster, 500),
                 log=lambda m: None)
    assert_same_stages(quickstart_run, tmp_path / "run", upto=2)
    local = RunStore.existing(quickstart_run).read_stage(3, "classify")
    dask = RunStore.existing(tmp_path / "run").read_stage(3, "classify")
    exact = [c for c in local.columns if c not in ("category_scores", "meta")]
    assert_frame_equal(dask.select(exact), local.select(exact))  # labels, flags, kinds, origins: identical
    scores = [pl.DataFrame([json.loads(s) if s else {} for s in f["category_scores"]]) for f in (local, dask)]
    assert_frame_equal(scores[1], scores[0], check_exact=False, abs_tol=1.5e-4, rel_tol=0)


def test_near_duplicates_in_different_shards_are_found(cluster, tmp_path):
    from curate.dedup import STAGE, DedupOptions
    from tests.test_dedup import EN, EN_EDIT, ZH, ZH_EDIT, frame

    fillers = [f"unrelated question number {i} about {topic}" for i, topic in
               enumerate(["gardening", "tax law", "chess", "baking", "rivers", "violins"])]
    texts = [EN, fillers[0], ZH, fillers[1], fillers[2], fillers[3], EN_EDIT, fillers[4], fillers[5], ZH_EDIT]
    df = frame(texts, lang=["en", "en", "zh", "en", "en", "en", "en", "en", "en", "zh"])
    opts = DedupOptions()
    local = run_stage(STAGE, df, opts, StageContext(stage="dedup", work_dir=tmp_path / "local"))
    logs: list[str] = []
    with open_engine(dask_on(cluster, shard_rows=3), logs.append) as engine:  # EN in shard 0, EN_EDIT in shard 2
        ctx = StageContext(stage="dedup", work_dir=tmp_path / "dask", engine=engine)
        out = run_stage(STAGE, df, opts, ctx)
    assert_frame_equal(out, local)
    clusters, dup = out["dup_cluster"].to_list(), out["is_duplicate"].to_list()
    assert clusters[0] == clusters[6] and clusters[2] == clusters[9]  # each pair is one cluster ...
    assert dup[0] != dup[6] and dup[2] != dup[9] and sum(dup) == 2  # ... with one representative; fillers unique


def test_a_worker_killed_mid_classify_still_gives_the_local_output(local_run, tmp_path, offline):
    recipe, local_dir = local_run
    happened = kill_a_worker_mid_stage(recipe, tmp_path / "run", stage="classify", shard_rows=100)
    assert not happened["failures"], happened["failures"]
    assert happened["finished"] and happened["victim gone"]
    assert 0 < happened["shards written at the kill"] < happened["shards"], f"not killed mid-stage: {happened}"
    assert_same_stages(local_dir, tmp_path / "run", upto=3)


def test_a_local_cluster_curate_starts_is_stopped_with_its_worker_processes(tmp_path):
    logs: list[str] = []
    settings = EngineSettings(engine="dask", dask=DaskSettings(local_workers=2))
    with open_engine(settings, logs.append) as engine:
        pids = list(engine.client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
    assert any("LocalCluster started by curate" in m for m in logs)
    deadline = time.monotonic() + 30
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        time.sleep(0.1)
    assert not alive, f"worker processes {alive} outlived the engine"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cli_engine_flags_give_the_same_records_and_a_one_line_error(tmp_path):
    import subprocess
    import sys

    from tests.test_dedup import EN, EN_EDIT

    rows = [{"source": "t", "source_id": str(i), "prompt": text, "lang": "en"}
            for i, text in enumerate([EN, "what is the boiling point of water", EN_EDIT, "name three rivers"])]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    curate = [sys.executable, "-c", "import sys; from curate.cli import main; sys.exit(main())"]

    collected = subprocess.run([*curate, "collect", "--in", str(src), "--name", "t", "--license", "CC0-1.0",
                                "--out", str(tmp_path / "c.parquet")],
                               capture_output=True, text=True, timeout=120)
    assert collected.returncode == 0, collected.stderr

    def dedup(out: str, *flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([*curate, "dedup", "--in", str(tmp_path / "c.parquet"), "--out", str(tmp_path / out),
                               *flags], capture_output=True, text=True, timeout=300)

    local = dedup("local.parquet")
    assert local.returncode == 0, local.stderr
    on_dask = dedup("dask.parquet", "--engine", "dask", "--dask-workers", "2")
    assert on_dask.returncode == 0, on_dask.stderr
    assert "dask: 2 workers at tcp://127.0.0.1:" in on_dask.stderr
    assert_frame_equal(pl.read_parquet(tmp_path / "dask.parquet"), pl.read_parquet(tmp_path / "local.parquet"))
    assert pl.read_parquet(tmp_path / "dask.parquet")["is_duplicate"].sum() == 1
    nobody = dedup("none.parquet", "--scheduler", "tcp://127.0.0.1:9")
    assert nobody.returncode == 2
    assert nobody.stderr.strip().splitlines()[-1].startswith("error: dask: no scheduler answers at tcp://127.0.0.1:9")


def test_shard_folders_left_by_a_killed_run_are_removed_at_the_next_start(tmp_path):
    left = tmp_path / "run" / "cache" / "shards" / "classify-1234abcd"
    left.mkdir(parents=True)
    (left / "in-00000.parquet").write_bytes(b"half")
    keep = tmp_path / "run" / "cache" / "llm.sqlite"
    keep.write_bytes(b"cache")
    with RunStore(tmp_path / "run").locked():  # the run that takes the folder's lock cleans up what a dead one left
        pass
    assert not (tmp_path / "run" / "cache" / "shards").exists() and keep.read_bytes() == b"cache"


def test_engine_settings_from_yaml_and_flags(tmp_path):
    from curate.config import ConfigError, load_pipeline

    recipe = tmp_path / "p.yaml"
    recipe.write_text("name: p\nengine: dask\ndask: {local_workers: 3, shard_rows: 50}\n"
                      "stages:\n  - collect: {sources: [{preset: xstest, path: %s}]}\n"
                      % (QUICKSTART.parent / "data" / "quickstart" / "xstest"), encoding="utf-8")
    settings = load_pipeline(recipe)[0].engine_settings()
    assert (settings.engine, settings.dask.local_workers, settings.dask.shard_rows) == ("dask", 3, 50)
    assert settings.overridden(engine="local").engine == "local"
    remote = EngineSettings().overridden(scheduler="tcp://10.0.0.5:8786")  # a scheduler implies dask
    assert (remote.engine, remote.dask.scheduler_address) == ("dask", "tcp://10.0.0.5:8786")
    recipe.write_text(recipe.read_text(encoding="utf-8").replace("local_workers", "workers"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"p.yaml: dask.workers: unknown key"):
        load_pipeline(recipe)
