"""The Dask engine: stages whose rows are independent run their own ``run`` per parquet shard on the
workers; column kernels (dedup's signatures) run per shard through ``map_slices``; LLM requests (synthesize's
generations and judge calls) run in batches through ``run_requests``; the rest runs in this process on the
gathered frame. Output equals the local engine's (shards are concatenated in order).

The cluster is reached lazily: the first stage that needs a worker connects (or starts the LocalCluster), so
a run whose stages are all done, or all run here, starts nothing. A LocalCluster curate started is closed with
the engine, also on failure and Ctrl-C, and any of its worker processes still alive then is stopped by PID.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import polars as pl

from curate.engine.settings import DaskSettings, EngineUnavailable
from curate.store import SHARDS
from curate.engine.shards import (VALUES, ShardResult, apply_to_shard, merge_stats, run_stage_shard,
                                  write_input_shards)


class DaskEngine:
    name = "dask"

    def __init__(self, settings: DaskSettings, log: Callable[[str], None] = print):
        self.settings = settings
        self.log = log
        self._client = None
        self._stack = contextlib.ExitStack()
        self._processes: dict[int, float] = {}  # worker processes of a LocalCluster we started: PID -> start time

    @property
    def started(self) -> bool:
        """Whether this engine has connected (or started a LocalCluster) yet."""
        return self._client is not None

    @property
    def client(self):
        """The Dask client, connecting on first use."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self):
        from distributed import Client, LocalCluster

        settings, stack = self.settings, self._stack
        if settings.scheduler_address:
            try:
                client = stack.enter_context(Client(settings.scheduler_address, timeout="10s"))
            except OSError as exc:
                raise EngineUnavailable(f"dask: no scheduler answers at {settings.scheduler_address} - {exc}") from None
            cluster = None
        else:
            # silence_logs: the cluster's INFO/WARNING lines (a nanny ending a slow worker at shutdown) are not
            # the user's business; errors still show
            stack.callback(self._stop_leftover_processes)  # runs last: after the cluster closed
            cluster = stack.enter_context(LocalCluster(n_workers=settings.local_workers, threads_per_worker=1,
                                                       processes=True, host="127.0.0.1",
                                                       dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))
            stack.callback(self._note_worker_processes, client)  # runs first: while the cluster is up
            self._note_worker_processes(client)
        info = client.scheduler_info()
        dashboard = "dashboard" in info.get("services", {})
        self.log(f"dask: {len(info.get('workers', {}))} workers at {client.scheduler.address}" +
                 (f" - dashboard {client.dashboard_link}" if dashboard else "") +  # no punctuation after a URL:
                 # the CLI's log redacts URLs, and a URL it cannot parse ("tcp://host:port;") is hidden whole
                 (" (LocalCluster started by curate)" if cluster is not None else ""))
        return client

    def _note_worker_processes(self, client) -> None:
        """Remember the worker processes of our LocalCluster (again at the end: a lost worker is replaced)."""
        import psutil

        try:
            pids = client.run(os.getpid, wait=True).values()
        except Exception:  # noqa: BLE001 - a broken cluster at shutdown: keep what was noted before
            return
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                self._processes[pid] = psutil.Process(pid).create_time()

    def _stop_leftover_processes(self) -> None:
        """Any worker process of our LocalCluster that outlived its close is stopped by PID (if still ours)."""
        import psutil

        from curate.llm.local.server import stop_pid

        for pid, created in self._processes.items():
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                    stop_pid(pid, grace=5)

    def close(self) -> None:
        """Close the client, and the LocalCluster if curate started one (nothing when never connected)."""
        self._client = None
        self._stack.close()

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    @contextlib.contextmanager
    def _shard_folder(self, work_dir: Path | None, label: str) -> Iterator[Path]:
        """A fresh folder for one stage's shards, removed when the stage is over (the manifest is the record)."""
        root = Path(self.settings.shard_dir or work_dir or Path.cwd() / ".curate-cache").resolve()
        folder = root / SHARDS / f"{label}-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _gather(self, futures: list, sizes: list[int], advance: Callable[[int], None],
                on_result: Callable[[int, Any], None] = lambda i, result: None) -> list[Any]:
        """Results in submission order, advancing progress as shards finish (``on_result`` sees each as it
        arrives and may raise to stop); cancels the rest on a failure."""
        from distributed import as_completed

        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        try:
            for future in as_completed(futures):
                i = index[future.key]
                results[i] = future.result()  # raises the task's exception here
                on_result(i, results[i])
                advance(sizes[i])
        finally:
            self.client.cancel([f for f in futures if not f.done()])
        return results

    def run_stage(self, stage, df: pl.DataFrame, options: Any, ctx) -> pl.DataFrame:
        if stage.creates_rows and stage.parts is not None:
            parts = stage.parts(options)  # collect: one task per source
            jobs, sizes, unit = [(part, None) for part in parts], [1] * len(parts), "parts"
        elif stage.shardable(options):
            rows, unit = self.settings.shard_rows, "shards"
        else:
            return stage.run(df, options, ctx)
        with self._shard_folder(ctx.work_dir, stage.name) as folder:
            if unit == "shards":
                jobs = [(options, path) for path in write_input_shards(df, folder, rows)]
                sizes = [min(rows, max(df.height - i * rows, 0)) for i in range(len(jobs))]
            futures = [self.client.submit(run_stage_shard, stage.name, part_options, in_path,
                                          folder / f"out-{i:05d}.parquet", ctx.taxonomy_path,
                                          Path(ctx.work_dir).resolve(), key=f"{stage.name}-{folder.name}-{i}",
                                          pure=False) for i, (part_options, in_path) in enumerate(jobs)]
            with ctx.progress(sum(sizes), f"{stage.name} on {len(jobs)} dask {unit}") as bar:
                results: list[ShardResult] = self._gather(futures, sizes, bar.advance)
            out = pl.concat([pl.read_parquet(r.out_path) for r in results], how="vertical")
        ctx.stats.update(merge_stats([r.stats for r in results]))
        for result in results:
            for row in result.quarantine:
                ctx.quarantine(source=row["source"], location=row["location"], reason=row["reason"], raw=row["raw"])
        return out

    def map_slices(self, fn: Callable[[pl.Series], Any], values: pl.Series, *, shard_rows: int, workers: int = 0,
                   advance: Callable[[int], None] = lambda n: None, work_dir: Path | None = None) -> list[Any]:
        """``fn`` over consecutive parquet shards of ``values`` on the workers, results in order.
        The engine's shard size applies (``shard_rows``/``workers`` size the local thread pool only)."""
        rows = self.settings.shard_rows
        with self._shard_folder(work_dir, "slices") as folder:
            paths = write_input_shards(values.rename(VALUES).to_frame(), folder, rows)
            sizes = [min(rows, max(len(values) - i * rows, 0)) for i in range(len(paths))]
            futures = [self.client.submit(apply_to_shard, fn, path, key=f"slice-{folder.name}-{i}", pure=False)
                       for i, path in enumerate(paths)]
            return self._gather(futures, sizes, advance)

    def run_requests(self, config, requests: Iterable, *, on_done: Callable[[int, Any], None] | None = None,
                     stats=None) -> tuple[list, Any]:
        """LLM requests in batches on the workers (curate.engine.requests), outcomes in input order; the same
        contract as ``curate.llm.run_requests``. Stops sending once a batch finds the endpoint unreachable."""
        from curate.engine.requests import batch_ranges, budgeted, key_for_workers, remaining, request_batch
        from curate.llm import LLMStats, Outcome

        reqs = list(requests)
        stats = stats if stats is not None else LLMStats()
        if not reqs:
            return [], stats
        if config.cache_path is not None:  # the workers' working folder is not ours
            config = replace(config, cache_path=Path(config.cache_path).resolve())
        workers = self.workers
        ranges = batch_ranges(len(reqs), workers, self.settings.shard_rows)
        outcomes: list = [None] * len(reqs)
        key = key_for_workers(config)
        tag = uuid.uuid4().hex[:8]

        def arrived(i: int, result) -> None:
            outs, spent = result
            stats.add(spent)
            for j, out in zip(ranges[i], outs):
                outcomes[j] = out
                if on_done is not None:
                    on_done(j, out)
            if any(out.status == "unreachable" for out in outs):
                raise _Unreachable(next(o.error for o in outs if o.status == "unreachable"))

        try:
            if budgeted(config):  # one batch at a time, each with what is left of the run's budget
                for i, batch in enumerate(ranges):
                    future = self.client.submit(request_batch, remaining(config, stats), reqs[batch.start:batch.stop],
                                                key, key=f"llm-{tag}-{i}", pure=False)
                    self._gather([future], [len(batch)], lambda n: None, lambda _, r, i=i: arrived(i, r))
            else:
                share = config.share(workers)
                futures = [self.client.submit(request_batch, share, reqs[r.start:r.stop], key, key=f"llm-{tag}-{i}",
                                              pure=False) for i, r in enumerate(ranges)]
                self._gather(futures, [len(r) for r in ranges], lambda n: None, arrived)
        except _Unreachable as stop:  # the rest was not tried: the stage sees the endpoint is gone
            for j, out in enumerate(outcomes):
                if out is None:
                    stats.unreachable += 1
                    outcomes[j] = Outcome("unreachable", error=str(stop))
        return outcomes, stats


class _Unreachable(Exception):
    """A batch found the endpoint gone: stop sending the others."""
