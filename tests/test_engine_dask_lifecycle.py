"""When the Dask engine starts and stops: the LocalCluster starts with the first stage that runs on it (a run
whose stages are all done starts nothing), and its worker processes end with the run, also on a failure
and on Ctrl-C."""
from __future__ import annotations

import os
import shutil
import time

import pytest
from polars.testing import assert_frame_equal

from curate.engine import DaskSettings, EngineSettings, open_engine
from curate.pipeline import run_pipeline
from curate.store import RunStore
from tests.test_engine_dask import local_run, offline  # noqa: F401 - fixtures

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'curate[dask]'")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.dask

STARTS_ITS_OWN = EngineSettings(engine="dask", dask=DaskSettings(local_workers=2, shard_rows=500))


def children() -> set[int]:
    """Our child processes, but multiprocessing's resource tracker: the standard library starts that one for
    the first spawned process of the interpreter (here a worker) and it ends with the interpreter, by design."""
    return {p.pid for p in psutil.Process().children(recursive=True)
            if "multiprocessing.resource_tracker" not in " ".join(p.cmdline())}


def test_a_resumed_run_starts_no_cluster_and_the_first_stage_on_it_does(local_run, tmp_path, offline):
    recipe, local_dir = local_run
    shutil.copytree(local_dir, tmp_path / "run")
    before = children()
    logs: list[str] = []
    result = run_pipeline(recipe, run_dir=tmp_path / "run", engine=STARTS_ITS_OWN, log=logs.append)
    assert set(result.ran) <= {"review"}, result.ran  # review always runs (here: skipped, no Label Studio)
    assert not [m for m in logs if m.startswith("dask:")], logs  # no LocalCluster, no client
    assert children() == before

    logs.clear()
    run_pipeline(recipe, run_dir=tmp_path / "run", from_stage="classify", to_stage="classify",
                 engine=STARTS_ITS_OWN, log=logs.append)
    started = [i for i, m in enumerate(logs) if m.startswith("dask: 2 workers")]
    assert len(started) == 1 and "LocalCluster started by curate" in logs[started[0]]
    assert logs.index("[classify] running") < started[0]  # started by the stage that needed it, not before
    assert all(m.endswith("unchanged: skipped" + m.split("skipped", 1)[1]) for m in logs[:2])
    got, expected = (RunStore.existing(d).read_stage(3, "classify") for d in (tmp_path / "run", local_dir))
    assert_frame_equal(got, expected)
    _assert_gone(children() - before)


@pytest.mark.parametrize("interruption", [RuntimeError("a stage failed"), KeyboardInterrupt()])
def test_the_cluster_curate_started_is_stopped_on_failure_and_ctrl_c(tmp_path, interruption):
    before = children()
    with pytest.raises(type(interruption)):
        with open_engine(STARTS_ITS_OWN, lambda m: None) as engine:
            assert not engine.started and children() == before  # opening the engine starts nothing
            workers = set(engine.client.run(os.getpid).values())
            assert len(workers) == 2 and workers <= children()
            raise interruption
    _assert_gone(workers | (children() - before))


def _assert_gone(pids: set[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE}
        time.sleep(0.1)
    assert not alive, f"processes {alive} outlived the engine"
