"""Synthesis client benchmark against the local OpenAI-compatible test server (separate process).

1. Throughput at concurrency 1, 16, 64 with 200 ms latency per request, against the ideal
   (concurrency / latency), and client CPU per request; the baseline is a bare ``AsyncOpenAI`` loop
   measured in the same run at the same concurrency (so the ratio shows what the curate client costs).
2. Runs with 20% transient failures (429 / 500 / dropped connections), with 5 retries and with 1 (so some
   records run out of retries): every record ends synthesized or with a drop reason, none twice. Uses the synthesize stage when the taxonomy is installed,
   otherwise the client alone.

    python benchmarks/synth_bench.py [--latency 0.2] [--seconds 4] [--repeat 3] [--fail-records 400]

Target: >= 85% of the ideal request rate at concurrency 64.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from curate.llm import LLMClient, LLMConfig, Request  # noqa: E402


class ServerProcess:
    def __init__(self, latency: float, fail_rate: float = 0.0):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.openai_compat", "--port", "0", "--latency", str(latency),
             "--fail-rate", str(fail_rate), "--seed", "7"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("serving "):
            raise RuntimeError(f"test server did not start: {line!r}")
        self.base_url = line.split()[1]

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base_url.rsplit("/v1", 1)[0] + "/_stats") as r:
            return json.load(r)

    def cpu_seconds(self) -> float | None:
        """The server process's CPU time (Linux /proc), to show whether the server or the client limits."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def requests_for(n: int, tag: str) -> list[Request]:
    return [Request(messages=[{"role": "user", "content": f"{tag} prompt {i}"}], params={"max_tokens": 256})
            for i in range(n)]


async def curate_client(base_url: str, concurrency: int, reqs: list[Request], cache: Path) -> int:
    cfg = LLMConfig(base_url=base_url, model="bench", concurrency=concurrency, cache_path=cache, backoff_base=0.05)
    async with LLMClient(cfg) as client:
        outs = await client.map(reqs)
    return sum(o.ok for o in outs)


async def bare_client(base_url: str, concurrency: int, reqs: list[Request]) -> int:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one(r: Request) -> bool:
        async with sem:
            resp = await client.chat.completions.create(model="bench", messages=r.messages, **r.params)
            return bool(resp.choices[0].message.content)

    ok = sum(await asyncio.gather(*(one(r) for r in reqs)))
    await client.close()
    return ok


def measure(fn, n: int) -> tuple[float, float, int]:
    """(requests/s, client CPU ms per request, ok count)."""
    wall, cpu = time.perf_counter(), time.process_time()
    ok = asyncio.run(fn())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n * 1000, ok


def throughput(latency: float, seconds: float, repeat: int) -> list[dict]:
    """Per concurrency, ``repeat`` alternating rounds of curate client / bare loop (fresh prompts each time,
    so no cache hits); the row keeps each side's best round (least disturbed by other load on the machine)
    and the median of the curate rounds."""
    server = ServerProcess(latency)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for c in (1, 16, 64):
                n = max(10, int(seconds * c / latency))
                ideal = c / latency
                curate, bare, server_ms = [], [], []
                for r in range(repeat):
                    before = server.cpu_seconds()
                    curate.append(measure(lambda: curate_client(server.base_url, c, requests_for(n, f"c{c}r{r}"),
                                                                Path(tmp) / "llm.sqlite"), n))
                    if before is not None:
                        server_ms.append((server.cpu_seconds() - before) / n * 1000)
                    bare.append(measure(lambda: bare_client(server.base_url, c, requests_for(n, f"b{c}r{r}")), n))
                best, best_bare = max(curate), max(bare)
                rows.append({"concurrency": c, "requests": n, "rounds": repeat, "ideal_rps": ideal,
                             "curate_rps": best[0], "curate_pct_ideal": 100 * best[0] / ideal,
                             "curate_median_pct_ideal": 100 * statistics.median(x[0] for x in curate) / ideal,
                             "curate_cpu_ms_per_req": best[1],
                             "server_cpu_ms_per_req": min(server_ms) if server_ms else float("nan"),
                             "bare_rps": best_bare[0], "bare_pct_ideal": 100 * best_bare[0] / ideal,
                             "bare_cpu_ms_per_req": best_bare[1], "curate_vs_bare": best[0] / best_bare[0],
                             "ok": all(x[2] == n for x in curate + bare)})
    finally:
        server.close()
    return rows


def failure_run(n_records: int, latency: float, max_retries: int) -> dict:
    server = ServerProcess(latency, fail_rate=0.2)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                import curate.taxonomy  # noqa: F401
            except ImportError:
                return _failure_run_client(server, n_records, Path(tmp), max_retries)
            return _failure_run_stage(server, n_records, Path(tmp), max_retries)
    finally:
        server.close()


def _failure_run_client(server: ServerProcess, n: int, tmp: Path, max_retries: int) -> dict:
    cfg = LLMConfig(base_url=server.base_url, model="bench", concurrency=32, backoff_base=0.05, max_retries=max_retries,
                    cache_path=tmp / "llm.sqlite")

    async def go():
        async with LLMClient(cfg) as client:
            return await client.map(requests_for(n, "fail")), client.stats

    outs, stats = asyncio.run(go())
    ended = {"ok": sum(o.ok for o in outs), "failed": sum(o.status == "failed" for o in outs)}
    return {"mode": "client", "records": n, "outcomes": len(outs), **ended, "every_record_ended": sum(ended.values()) == n,
            "server": server.stats(), "retries": stats.retries}


def _failure_run_stage(server: ServerProcess, n: int, tmp: Path, max_retries: int) -> dict:
    import polars as pl

    from curate import records
    from curate.stage import StageContext
    from curate.synthesize import STAGE, SynthesizeOptions
    from curate.taxonomy import Taxonomy

    refuse = next(d.id for d in Taxonomy.load(None).dimensions if d.response_mode == "refuse")
    df = records.conform(pl.DataFrame({
        "id": [f"r{i}" for i in range(n)], "source": ["bench"] * n, "source_id": [str(i) for i in range(n)],
        "lang": ["en"] * n, "prompt": [f"How would someone do harmful thing number {i}?" for i in range(n)],
        "categories": [[refuse]] * n, "prompt_harmful": [True] * n}))
    ctx = StageContext(stage="synthesize", work_dir=tmp, log=lambda m: None)
    opts = SynthesizeOptions(base_url=server.base_url, model="bench", concurrency=32, backoff_base=0.05,
                             max_retries=max_retries, near_duplicate_threshold=0)
    out = STAGE.run(df, opts, ctx)
    status = [records.load_meta(m)["synthesize"]["status"] for m in out["meta"]]
    synthesized = sum(s == "synthesized" for s in status)
    with_reason = out["drop_reason"].is_not_null().sum()
    return {"mode": "stage", "records": n, "rows_out": out.height, "unique_ids": out["id"].n_unique(),
            "synthesized": synthesized, "dropped_with_reason": int(with_reason),
            "drop_reasons": {k: v for k, v in out.group_by("drop_reason").len().iter_rows() if k},
            "every_record_ended": synthesized + with_reason == n and out["id"].n_unique() == n,
            "server": server.stats(), "retries": ctx.stats["retries"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--seconds", type=float, default=4.0, help="ideal duration of each throughput run")
    parser.add_argument("--fail-records", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3, help="rounds per concurrency (best and median reported)")
    args = parser.parse_args()
    print(f"synth_bench: latency {args.latency * 1000:.0f} ms, server in a separate process, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start\n")
    print(f"{'conc':>4} {'reqs':>5} {'ideal/s':>8} {'curate/s':>9} {'%ideal':>7} {'median':>7} {'cpu ms/req':>10} "
          f"{'bare/s':>8} {'%ideal':>7} {'cpu ms/req':>10} {'curate/bare':>11} {'server ms/req':>13}")
    rows = throughput(args.latency, args.seconds, args.repeat)
    for r in rows:
        print(f"{r['concurrency']:>4} {r['requests']:>5} {r['ideal_rps']:>8.1f} {r['curate_rps']:>9.1f} "
              f"{r['curate_pct_ideal']:>6.1f}% {r['curate_median_pct_ideal']:>6.1f}% {r['curate_cpu_ms_per_req']:>10.2f} "
              f"{r['bare_rps']:>8.1f} "
              f"{r['bare_pct_ideal']:>6.1f}% {r['bare_cpu_ms_per_req']:>10.2f} {r['curate_vs_bare']:>11.2f} "
              f"{r['server_cpu_ms_per_req']:>13.2f}")
    at64 = next(r for r in rows if r["concurrency"] == 64)
    target = at64["curate_pct_ideal"] >= 85
    print(f"\ntarget >= 85% of ideal at concurrency 64: {'MET' if target else 'MISSED'} "
          f"(best round {at64['curate_pct_ideal']:.1f}%, median {at64['curate_median_pct_ideal']:.1f}%; "
          f"load average now {os.getloadavg()[0]:.2f})")
    ended = True
    for retries in (5, 1):  # 1 retry: some records run out of retries and must end with synthesis_failed
        fail = failure_run(args.fail_records, latency=0.05, max_retries=retries)
        print(f"\n20% transient failures, max_retries={retries} ({fail['mode']}): {json.dumps(fail)}")
        print(f"every record ended once (synthesized or with a reason): {'YES' if fail['every_record_ended'] else 'NO'}")
        ended = ended and fail["every_record_ended"]
    sys.exit(0 if target and ended else 1)


if __name__ == "__main__":
    main()
