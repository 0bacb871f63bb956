"""Scenarios of performance round 3 (issue 19), each a step of a run on one backend.

* :func:`uncached_reads`: the reads again, on a second server whose response cache is off
  (``PACKYARD_RESPONSE_CACHE_MB=0``): what every request costs when nothing is cached.
* :func:`mixed_load`: GetChannel under wrk while pushers push into other buckets of the same
  project, against the same GetChannel on a quiet server just before.
* :func:`two_servers`: on PostgreSQL, the same pushers against one server, then spread over
  two ``packyard serve`` processes on one database, with the database's backends and locks
  sampled throughout (:mod:`bench.pgactivity`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

from bench.loadgen import WrkResult, run_wrk
from bench.pgactivity import ActivitySampler
from bench.push import PushResult, run_pushers_on
from bench.report import cost_figures
from bench.server import CpuClock, RunningServer
from bench.sqlcount import Endpoint

Log = Callable[[str], None]
# Starts one more ``packyard serve`` on the run's database with these variables added.
StartServer = Callable[[dict[str, str]], AbstractContextManager[RunningServer]]
UNCACHED_ENV = {"PACKYARD_RESPONSE_CACHE_MB": "0"}
# Pushers start this long before the reads under load and stop this long after them.
MIXED_LEAD_S = 1.0


def other_buckets(push_buckets: list[str], read_bucket: str) -> list[str]:
    """The buckets pushes may go to without touching the bucket the reads read."""
    return [b for b in push_buckets if b != read_bucket] or list(push_buckets)


def _wrk(
    wrk: str, base_url: str, token: str, ep: Endpoint, conns: int, seconds: float
) -> WrkResult:
    return run_wrk(
        wrk,
        base_url + ep.path,
        connections=conns,
        seconds=seconds,
        token=token,
        method=ep.method,
        body=ep.body,
    )


def uncached_reads(
    start: StartServer,
    wrk: str,
    endpoints: list[Endpoint],
    *,
    connections: list[int],
    warmup: float,
    duration: float,
    cost_connections: int,
    database_pid: int | None,
    scrape: Callable[[str], dict[str, Any]],
    log: Log,
) -> dict[str, Any]:
    """Each read at each connection count on a server with the response cache off; the CPU
    of GetChannel at ``cost_connections``; what that server's ``/metrics`` says about its cache
    afterwards (no lookups: the cache is really off)."""
    reads: dict[str, dict[str, Any]] = {}
    cost: dict[str, Any] | None = None
    with start(UNCACHED_ENV) as srv:
        for conns in connections:
            for ep in endpoints:
                _wrk(wrk, srv.base_url, srv.token, ep, conns, warmup)  # discarded
                with CpuClock(srv.pid, database_pid) as clock:
                    got = _wrk(wrk, srv.base_url, srv.token, ep, conns, duration)
                reads.setdefault(ep.name, {})[str(conns)] = got.to_json()
                if ep.name == "GetChannel" and conns == cost_connections:
                    cost = cost_figures(got.requests, 1_000_000, *clock.seconds, connections=conns)
                log(
                    f"uncached {ep.name:<22} c={conns:<3} {got.requests_per_s:>8.1f} req/s "
                    f"p50 {got.latency_p50_ms:.2f} ms p99 {got.latency_p99_ms:.2f} ms"
                    + (f" errors {got.errors}" if got.errors else "")
                )
        found = scrape(srv.base_url)
    return {
        "env": UNCACHED_ENV,
        "reads": reads,
        "cost_getchannel": cost,
        "cache_hit_ratio": found.get("cache_hit_ratio"),
        "requests_counted": found.get("requests"),
    }


def mixed_load(
    wrk: str,
    base_url: str,
    token: str,
    ep: Endpoint,
    push: Callable[[float], PushResult],
    *,
    connections: int,
    pushers: int,
    warmup: float,
    duration: float,
    log: Log,
) -> dict[str, Any]:
    """GetChannel on a quiet server, then the same while ``push(seconds)`` pushes (from a
    thread: it runs its own event loop), started ``MIXED_LEAD_S`` before the reads and going
    on as long after them."""
    _wrk(wrk, base_url, token, ep, connections, warmup)  # discarded
    quiet = _wrk(wrk, base_url, token, ep, connections, duration)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pushing = pool.submit(push, duration + 2 * MIXED_LEAD_S)
        time.sleep(MIXED_LEAD_S)
        loaded = _wrk(wrk, base_url, token, ep, connections, duration)
        pushed = pushing.result()
    ratio = loaded.requests_per_s / quiet.requests_per_s if quiet.requests_per_s else None
    log(
        f"mixed: GetChannel c={connections} {loaded.requests_per_s:.1f} req/s while pushing "
        f"(p50 {loaded.latency_p50_ms:.2f} ms, p99 {loaded.latency_p99_ms:.2f} ms) against "
        f"{quiet.requests_per_s:.1f} quiet ({ratio or 0:.3f} x); {pushers} pushers "
        f"{pushed.versions_per_s:.1f} versions/s meanwhile ({pushed.failures} failed)"
    )
    return {
        "connections": connections,
        "pushers": pushers,
        "quiet": quiet.to_json(),
        "during_pushes": loaded.to_json(),
        "ratio": None if ratio is None else round(ratio, 4),
        "push": pushed.to_json(),
    }


def two_servers(
    start: StartServer,
    main: RunningServer,
    prefix: str,
    buckets: list[str],
    conninfo: str,
    *,
    pushers: int,
    duration: float,
    database_pid: int | None,
    log: Log,
) -> dict[str, Any]:
    """``pushers`` pushers against ``main``, then the same spread over ``main`` and a second
    server on the same database (pusher *i* on server *i* mod 2, each on its own bucket when
    there are enough), sampling the database's activity and locks during each run."""
    mine = buckets[:pushers]

    def run(servers: list[RunningServer]) -> dict[str, Any]:
        pids = [s.pid for s in servers]
        with ActivitySampler(conninfo) as sampler, CpuClock(*pids, database_pid) as clock:
            pushed = asyncio.run(
                run_pushers_on(
                    [(s.base_url, s.token) for s in servers],
                    prefix,
                    mine,
                    pushers=pushers,
                    seconds=duration,
                )
            )
        *servers_cpu, db_cpu = clock.seconds
        server_cpu = None if None in servers_cpu else sum(s or 0.0 for s in servers_cpu)
        activity = sampler.summary()
        log(
            f"{len(servers)} server(s), {pushers} pushers: {pushed.versions_per_s:.1f} versions/s "
            f"(p50 {pushed.version_p50_ms:.0f} ms, {pushed.failures} failed); backends waiting "
            f"on locks {activity['avg_waiting_on_locks']:.2f}, idle in transaction "
            f"{activity['avg_idle_in_transaction']:.2f} (avg of {activity['samples']} samples)"
        )
        return {
            "servers": len(servers),
            "push": pushed.to_json(),
            "activity": activity,
            "cost": cost_figures(pushed.versions, 1000, server_cpu, db_cpu, pushers=pushers),
        }

    one = run([main])
    with start({}) as second:
        two = run([main, second])
    rate_one = one["push"]["versions_per_s"]
    return {
        "pushers": pushers,
        "buckets": len(mine),
        "one_server": one,
        "two_servers": two,
        "ratio": round(two["push"]["versions_per_s"] / rate_one, 4) if rate_one else None,
    }
