"""One benchmark run on one backend: seed, count statements, load the server, measure."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench import console, profiling, scenarios, webhooks
from bench.loadgen import WrkResult, run_wrk, static_server
from bench.push import PushResult, project_prefix, run_pushers
from bench.report import cost_figures
from bench.seed import RevocationShape, SeedReport, Shape, Targets, seed
from bench.server import (
    CpuClock,
    MemorySampler,
    RunningServer,
    ServerMemory,
    packyard_server,
    server_memory,
)
from bench.sqlcount import Endpoint, count_push, count_request, counter_for, read_endpoints
from packyard.domain.models import Principal
from packyard.server import prepare
from packyard.services.bootstrap import AdminCredentials, load_credentials
from packyard.services.container import Services
from packyard.store.tenancy import TenancyRepo

Log = Callable[[str], None]
# The web stack's floor: FastAPI answering a small page with no auth and no database.
FLOOR = Endpoint("FrameworkFloor(/docs)", "GET", "/docs")


@dataclass(slots=True)
class Options:
    size: str
    shape: Shape
    backends: list[str]
    duration: float = 10.0
    warmup: float = 2.0
    connections: list[int] = field(default_factory=lambda: [1, 16])
    pushers: list[int] = field(default_factory=lambda: [1, 8, 16])
    nginx_rounds: int = 2
    workers: int = 1
    revocation: RevocationShape | None = field(default_factory=RevocationShape)
    profile: bool = False
    profile_seconds: float = 10.0
    results_dir: Path = Path(__file__).parent / "results"
    keep: bool = False
    console: bool = True  # the console's main pages (bench/console.py)
    console_requests: int = 50  # sequential requests per page, after a warm-up
    console_wrk_seconds: float = 5.0  # wrk per page at the highest connection count; 0: none
    webhook_rounds: int = 2  # push alternations without / with a dead webhook receiver; 0: none
    webhook_pushers: int = 8
    uncached: bool = True  # the reads again on a server with the response cache off
    mixed: bool = True  # GetChannel while pushers push into other buckets of the project
    mixed_pushers: int = 16
    two_servers: bool = True  # PostgreSQL: pushers on one server vs spread over two
    two_server_pushers: int = 16


# The connection and pusher counts the costs (and issue 19's targets) are taken at, when run.
COST_CONNECTIONS = 16
COST_PUSHERS = 16
MIXED_CONNECTIONS = 16


@dataclass(slots=True)
class _CpuTally:
    """Requests of one or more wrk runs and the CPU seconds they cost (server, database)."""

    pids: tuple[int | None, int | None]
    count: int = 0
    seconds: list[float | None] = field(default_factory=lambda: [0.0, 0.0])

    def run(self, fn: Callable[[], WrkResult]) -> WrkResult:
        with CpuClock(*self.pids) as clock:
            got = fn()
        self.count += got.requests
        self.seconds = [
            None if a is None or b is None else a + b
            for a, b in zip(self.seconds, clock.seconds, strict=True)
        ]
        return got


def _pick(wanted: int, configured: list[int]) -> int | None:
    """``wanted`` if it is among the configured counts, else the highest one."""
    return wanted if wanted in configured else max(configured, default=None)


@dataclass(slots=True)
class Tools:
    wrk: str
    nginx: str | None


def run_backend(backend: str, opts: Options, tools: Tools, log: Log) -> dict[str, Any]:
    """Everything measured on one backend, as a JSON-ready dict."""
    workdir = Path(tempfile.mkdtemp(prefix=f"packyard-bench-{backend}-"))
    cluster: Any = None
    try:
        db_url: str | None = None
        if backend == "postgresql":
            from tests.support.postgres import start_cluster

            cluster = start_cluster()
            db_url = cluster.create_database("packyard_bench")
        data_dir = workdir / "data"
        services, _ = prepare(data_dir, db_url)
        creds = load_credentials(data_dir)
        assert creds is not None
        principal = _principal(services, creds)
        log(f"[{backend}] seeding size {opts.size} ({opts.shape.total_versions} versions)")
        report = seed(
            services.store,
            creds.organization_id,
            creds.project_id,
            opts.shape,
            revocation=opts.revocation,
            principal_id=principal.id,
            progress=lambda m: log(f"[{backend}] {m}"),
        )
        log(
            f"[{backend}] seeded in {report.seconds:.1f} s "
            f"(+{report.revocation_seconds:.1f} s revocation forest)"
        )
        log(f"[{backend}] counting SQL statements per request (in-process)")
        sql = measure_sql(services, principal, report.targets)
        out: dict[str, Any] = {
            "seed": _seed_json(report),
            "sql_per_request": sql,
        }
        user: tuple[str, str] | None = None
        if opts.console:
            user, out["console"] = _console_sql(services, report.targets, log, backend)
        services.store.dispose()
        base_env = webhooks.SERVER_ENV if opts.webhook_rounds else {}

        def start(env: dict[str, str]) -> AbstractContextManager[RunningServer]:
            """One more ``packyard serve`` on this run's database, ``env`` added."""
            return packyard_server(
                data_dir,
                db_url,
                creds,
                log_dir=workdir,
                workers=opts.workers,
                env={**base_env, **env},
            )

        with start({}) as srv:
            pages: Callable[[], None] | None = None
            if user is not None:
                found, url, console_user = out["console"], srv.base_url, user

                def pages() -> None:
                    log(f"[{backend}] console: server time per page")
                    _console_server(
                        found, url, report.targets, console_user, opts, tools, log, backend
                    )

            out.update(
                _measure_server(
                    backend,
                    srv.pid,
                    srv.base_url,
                    srv.token,
                    report,
                    opts,
                    tools,
                    workdir,
                    log,
                    console_pages=pages,
                    start_server=start,
                    main=srv,
                    database_url=db_url,
                    database_pid=_postmaster_pid(cluster),
                )
            )
        return out
    finally:
        if cluster is not None:
            cluster.stop()
        if opts.keep:
            log(f"[{backend}] kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _postmaster_pid(cluster: Any) -> int | None:
    """PostgreSQL's postmaster (its backends are its children), for their CPU time."""
    if cluster is None:
        return None
    try:
        return int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


def _console_sql(
    services: Services, targets: Targets, log: Log, backend: str
) -> tuple[tuple[str, str] | None, dict[str, Any]]:
    """A console user, and the statements of each console page (in-process). A failure is
    recorded, not raised: the console is being written while the harness runs."""
    log(f"[{backend}] console: a user, and SQL statements per page (in-process)")
    try:
        user = console.create_user(services, targets.organization_id, targets.project_id)
        counts = console.measure_sql(services, counter_for(services.store), targets, *user)
    except Exception as exc:  # reported in the results instead
        log(f"[{backend}] console skipped: {exc!r}")
        return None, {"error": repr(exc)[:400], "pages": {}}
    for name, count in counts.items():
        if count["state"] == "ok":
            log(f"[{backend}] console {name:<14} {count['statements']:.1f} statements")
        else:
            log(f"[{backend}] console {name:<14} {count['state']} (HTTP {count['status']})")
    return user, {"pages": {name: {"sql": count} for name, count in counts.items()}}


def console_wrk_connections(opts: Options) -> int | None:
    """The connections of each console page's wrk run: the reads' highest count; ``None``
    (no wrk run) when they are off or the run measures no reads."""
    if opts.console_wrk_seconds <= 0 or not opts.connections:
        return None
    return max(opts.connections)


def _console_server(
    found: dict[str, Any],
    base_url: str,
    targets: Targets,
    user: tuple[str, str],
    opts: Options,
    tools: Tools,
    log: Log,
    backend: str,
) -> None:
    """Server time and throughput of each console page, added to ``found``."""
    conns = console_wrk_connections(opts)

    def wrk(url: str, cookie: str) -> WrkResult:
        assert conns is not None
        return run_wrk(
            tools.wrk, url, connections=conns, seconds=opts.console_wrk_seconds, cookie=cookie
        )

    try:
        timed = console.measure_server(
            base_url,
            targets,
            *user,
            requests=opts.console_requests,
            wrk=None if conns is None else wrk,
            log=lambda m: log(f"[{backend}] {m}"),
        )
    except Exception as exc:  # reported in the results instead
        log(f"[{backend}] console timing failed: {exc!r}")
        found["error"] = repr(exc)[:400]
        return
    found["user"] = timed["user"]
    found["requests_per_page"] = timed["requests_per_page"]
    for name, got in timed["pages"].items():
        found["pages"].setdefault(name, {}).update(got)


def _principal(services: Services, creds: AdminCredentials) -> Principal:
    with services.store.read() as conn:
        found = TenancyRepo(conn).principal_by_client_id(creds.client_id)
    assert found is not None
    return found[0]


def _seed_json(report: SeedReport) -> dict[str, Any]:
    rows = sum(report.rows.values())
    return {
        "seconds": round(report.seconds, 2),
        "revocation_forest_seconds": round(report.revocation_seconds, 2),
        "rows": report.rows,
        "rows_total": rows,
        "rows_per_s": round(rows / report.seconds) if report.seconds else None,
        "targets": {
            "bucket": report.targets.bucket,
            "channel": report.targets.channel,
            "version_fingerprint": report.targets.version_fingerprint,
            "external_identifier": report.targets.external_identifier,
            "list_page_size": report.targets.list_page_size,
            "revocation_descendants": report.targets.revocation_descendants,
        },
    }


def measure_sql(services: Services, principal: Principal, targets: Targets) -> dict[str, Any]:
    """Statements per request of each read endpoint and of one whole push.

    Counted with the response cache off (the full work of each request), then, for
    the reads, with it on: a repeated read costs the cache's generation probe only.
    """
    from tests.support.server import running_server, serving_app

    from packyard.api.app import create_app

    counter = counter_for(services.store)
    token = services.auth.issue_token(principal).access_token
    headers = {"Authorization": f"Bearer {token}"}
    out: dict[str, Any] = {}
    with running_server(services, response_cache=False) as base_url:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            for endpoint in read_endpoints(targets):
                out[endpoint.name] = count_request(client, counter, endpoint).to_json()
        push = count_push(
            base_url,
            token,
            counter,
            targets,
            targets.push_buckets[0],
            f"sqlcount-{int(time.time())}",
        )
        out["PushVersion"] = push.to_json()
    app = create_app(services, background_jobs=False)
    cache = app.state.read_cache
    with (
        serving_app(app) as base_url,
        httpx.Client(base_url=base_url, headers=headers, timeout=60) as client,
    ):
        for endpoint in read_endpoints(targets):
            for _ in range(3):  # role looked up, seen, stored: what follows are hits
                client.request(endpoint.method, endpoint.path, json=endpoint.json)
            probes, hits = cache.probes, cache.responses.hits
            cached = count_request(client, counter, endpoint)
            repeat = 4  # count_request's warm-up plus its three counted requests
            out[endpoint.name]["cached"] = {
                "statements": cached.statements,
                "probes": (cache.probes - probes) / repeat,
                "hit_ratio": (cache.responses.hits - hits) / repeat,
            }
    return out


def _measure_server(
    backend: str,
    pid: int,
    base_url: str,
    token: str,
    report: SeedReport,
    opts: Options,
    tools: Tools,
    workdir: Path,
    log: Log,
    *,
    console_pages: Callable[[], None] | None = None,
    start_server: scenarios.StartServer | None = None,
    main: RunningServer | None = None,
    database_url: str | None = None,
    database_pid: int | None = None,
) -> dict[str, Any]:
    """The API's reads, the same reads uncached on a second server (``start_server``), the
    console's pages (``console_pages``), the pushes, the reads while pushing, two servers
    pushing on one PostgreSQL, the profile and the revocation, with the server's memory
    sampled throughout and the CPU time of the cost figures."""
    targets = report.targets
    endpoints = [*read_endpoints(targets), FLOOR]
    headers = {"Authorization": f"Bearer {token}"}
    skipped: dict[str, str] = {}
    bodies: dict[str, bytes] = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for ep in endpoints:
            response = client.request(ep.method, ep.path, json=ep.json)
            if response.status_code != 200:
                skipped[ep.name] = _describe_error(response)
                log(f"[{backend}] skipping {ep.name}: {skipped[ep.name]}")
            else:
                bodies[ep.name] = response.content
    memory_at_start = server_memory(pid)
    reads: dict[str, dict[str, Any]] = {}
    nginx: dict[str, Any] = {}
    cost: dict[str, Any] = {}
    cost_conns = _pick(COST_CONNECTIONS, opts.connections)
    cost_pushers = _pick(COST_PUSHERS, opts.pushers)
    uncached: dict[str, Any] | None = None
    mixed: dict[str, Any] | None = None
    two_servers: dict[str, Any] | None = None
    prefix = project_prefix(targets.organization_id, targets.project_id)
    others = scenarios.other_buckets(targets.push_buckets, targets.bucket)
    scenario_log: Log = lambda m: log(f"[{backend}] {m}")  # noqa: E731
    with MemorySampler(pid) as sampler:
        for conns in opts.connections:
            for ep in endpoints:
                if ep.name in skipped:
                    continue
                url = base_url + ep.path
                _wrk(tools, url, ep, token, conns, opts.warmup)  # warm-up, discarded
                tally = (
                    _CpuTally((pid, database_pid))
                    if ep.name == "GetChannel" and conns == cost_conns
                    else None
                )
                if ep.name == "GetChannel" and tools.nginx is not None:
                    static_runs, runs = _alternate(
                        tools, url, ep, token, conns, opts, bodies, tally
                    )
                    nginx[str(conns)] = _summary(static_runs)
                    nginx[str(conns)]["runs"] = [r.to_json() for r in static_runs]
                    reads.setdefault(ep.name, {})[str(conns)] = _summary(runs)
                    reads[ep.name][str(conns)]["runs"] = [r.to_json() for r in runs]
                else:
                    measure = partial(_wrk, tools, url, ep, token, conns, opts.duration)
                    result = tally.run(measure) if tally else measure()
                    reads.setdefault(ep.name, {})[str(conns)] = result.to_json()
                if tally is not None:
                    cost["getchannel_cached"] = cost_figures(
                        tally.count, 1_000_000, *tally.seconds, connections=conns
                    )
                got = reads[ep.name][str(conns)]
                log(
                    f"[{backend}] {ep.name:<22} c={conns:<3} {got['requests_per_s']:>8.1f} req/s "
                    f"p50 {got['latency_p50_ms']:.2f} ms p99 {got['latency_p99_ms']:.2f} ms"
                    + (f" errors {got['errors']}" if got["errors"] else "")
                )
                if ep.name == "GetChannel" and str(conns) in nginx:
                    n = nginx[str(conns)]
                    log(
                        f"[{backend}] {'nginx static':<22} c={conns:<3} "
                        f"{n['requests_per_s']:>8.1f} req/s p50 {n['latency_p50_ms']:.2f} ms "
                        f"p99 {n['latency_p99_ms']:.2f} ms"
                        + (f" errors {n['errors']}" if n["errors"] else "")
                    )
        if opts.uncached and start_server is not None:
            log(f"[{backend}] the reads again on a second server with the response cache off")
            uncached = scenarios.uncached_reads(
                start_server,
                tools.wrk,
                [ep for ep in endpoints if ep is not FLOOR and ep.name not in skipped],
                connections=opts.connections,
                warmup=opts.warmup,
                duration=opts.duration,
                cost_connections=cost_conns or 0,
                database_pid=database_pid,
                scrape=_scrape_metrics,
                log=scenario_log,
            )
            if uncached["cost_getchannel"]:
                cost["getchannel_uncached"] = uncached["cost_getchannel"]
        if console_pages is not None:  # on the registry as seeded, before the pushes
            console_pages()
        push_results = []
        for n in opts.pushers:
            with CpuClock(pid, database_pid) as clock:
                pushed = _push(base_url, token, targets, pushers=n, seconds=opts.duration)
            if n == cost_pushers:
                cost["push"] = cost_figures(pushed.versions, 1000, *clock.seconds, pushers=n)
            push_results.append(pushed.to_json())
            log(
                f"[{backend}] push, {n} pusher(s): {pushed.versions_per_s:.1f} versions/s "
                f"({pushed.versions} versions, {pushed.failures} failed, "
                f"p50 {pushed.version_p50_ms:.0f} ms, load generator {pushed.loadgen_cpu:.2f} CPU)"
                + (f" first failure: {pushed.first_failure}" if pushed.first_failure else "")
            )
        dead_webhook = None
        if opts.webhook_rounds:
            dead_webhook = _push_dead_webhook(backend, base_url, token, targets, opts, log)
        if opts.mixed and "GetChannel" not in skipped:
            log(
                f"[{backend}] GetChannel quiet, then while {opts.mixed_pushers} pushers push "
                "into other buckets of the project"
            )
            mixed = scenarios.mixed_load(
                tools.wrk,
                base_url,
                token,
                endpoints[0],
                lambda seconds: _push(
                    base_url,
                    token,
                    targets,
                    pushers=opts.mixed_pushers,
                    seconds=seconds,
                    buckets=others,
                ),
                connections=MIXED_CONNECTIONS,
                pushers=opts.mixed_pushers,
                warmup=opts.warmup,
                duration=opts.duration,
                log=scenario_log,
            )
        if (
            opts.two_servers
            and backend == "postgresql"
            and database_url
            and start_server is not None
            and main is not None
        ):
            log(f"[{backend}] {opts.two_server_pushers} pushers on one server, then on two")
            two_servers = scenarios.two_servers(
                start_server,
                main,
                prefix,
                others,
                database_url,
                pushers=opts.two_server_pushers,
                duration=opts.duration,
                database_pid=database_pid,
                log=scenario_log,
            )
        peak = sampler.peak
    scrape = _scrape_metrics(base_url)
    log(
        f"[{backend}] /metrics: {scrape['requests']} requests counted, cache hit ratio "
        f"{scrape['cache_hit_ratio']}, scrape {scrape['scrape_ms']:.1f} ms, {scrape['bytes']} bytes"
    )
    profile: dict[str, Any] | None = None
    if opts.profile and "GetChannel" not in skipped:
        profile = _profile(
            backend, pid, base_url + endpoints[0].path, token, opts, tools, workdir, log
        )
        if profile is not None and opts.pushers:
            profile["push"] = _profile_push(
                backend, pid, base_url, token, targets, opts, workdir, log
            )
    revocation_peak: ServerMemory | None = None
    revocation = None
    if opts.revocation:
        # Sampled apart from the load above: the revocation's transaction is the largest
        # the benchmark makes, and its peak is over before the memory after the run is read.
        with MemorySampler(pid, interval=0.05) as revoking:
            revocation = _revoke(base_url, token, targets, log, backend)
        revocation_peak = revoking.peak
    memory_after = server_memory(pid)
    ratio = {
        c: round(reads["GetChannel"][c]["requests_per_s"] / nginx[c]["requests_per_s"], 4)
        for c in nginx
        if "GetChannel" in reads and c in reads["GetChannel"] and nginx[c]["requests_per_s"]
    }
    return {
        "reads": reads,
        "nginx_static_getchannel": nginx,
        "getchannel_ratio_to_nginx": ratio,
        "skipped": skipped,
        "response_bytes": {k: len(v) for k, v in bodies.items()},
        "push": push_results,
        "push_dead_webhook": dead_webhook,
        "uncached": uncached,
        "mixed": mixed,
        "two_servers": two_servers,
        "cost": cost,
        "revocation": revocation,
        "memory_mb": {
            "after_start": memory_at_start.to_json() if memory_at_start else None,
            "under_load_peak": peak.to_json() if peak else None,
            "revocation_peak": revocation_peak.to_json() if revocation_peak else None,
            "after_benchmark": memory_after.to_json() if memory_after else None,
        },
        "profile": profile,
        "metrics_scrape": scrape,
    }


def _scrape_metrics(base_url: str) -> dict[str, Any]:
    """What ``/metrics`` says after the reads and pushes (the harness scrapes from loopback,
    which needs no token): the requests it counted, the read cache's hit ratio and the
    registry events, and what one scrape costs."""
    from prometheus_client.parser import text_string_to_metric_families

    started = time.perf_counter()
    response = httpx.get(f"{base_url}/metrics", timeout=30)
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    totals: dict[str, float] = {}
    by_label: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
            for key in ("result", "event"):
                if key in sample.labels:
                    seen = by_label.setdefault(sample.name, {})
                    seen[sample.labels[key]] = seen.get(sample.labels[key], 0.0) + sample.value
    lookups = by_label.get("packyard_response_cache_lookups_total", {})
    # Answers shared with the same request in flight came from memory too.
    hits = lookups.get("hit", 0.0) + lookups.get("shared", 0.0)
    misses = lookups.get("miss", 0.0)
    return {
        "scrape_ms": round(elapsed_ms, 2),
        "bytes": len(response.content),
        "requests": int(totals.get("packyard_http_requests_total", 0)),
        "cache_hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
        "events": {
            name: int(count)
            for name, count in by_label.get("packyard_registry_events_total", {}).items()
        },
    }


def _describe_error(response: httpx.Response) -> str:
    code = ""
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and "code" in body:
            code = f" code {body['code']}: {str(body.get('message', ''))[:120]}"
    return f"HTTP {response.status_code}{code}"


def _wrk(tools: Tools, url: str, ep: Endpoint, token: str, conns: int, seconds: float) -> WrkResult:
    return run_wrk(
        tools.wrk,
        url,
        connections=conns,
        seconds=seconds,
        token=token,
        method=ep.method,
        body=ep.body,
    )


def _alternate(
    tools: Tools,
    url: str,
    ep: Endpoint,
    token: str,
    conns: int,
    opts: Options,
    bodies: dict[str, bytes],
    tally: _CpuTally | None = None,
) -> tuple[list[WrkResult], list[WrkResult]]:
    """nginx serving GetChannel's body, then Packyard, ``nginx_rounds`` times, same wrk settings."""
    assert tools.nginx is not None
    static_runs: list[WrkResult] = []
    runs: list[WrkResult] = []
    path = ep.path
    with static_server(tools.nginx, path, bodies[ep.name]) as static_url:
        _wrk(tools, static_url, ep, token, conns, opts.warmup)
        for _ in range(max(1, opts.nginx_rounds)):
            static_runs.append(_wrk(tools, static_url, ep, token, conns, opts.duration))
            measure = partial(_wrk, tools, url, ep, token, conns, opts.duration)
            runs.append(tally.run(measure) if tally else measure())
    return static_runs, runs


def _summary(runs: list[WrkResult]) -> dict[str, Any]:
    """The median run by throughput (with two runs: the mean of the numbers)."""

    def med(attr: str) -> float:
        return round(statistics.median(float(getattr(r, attr)) for r in runs), 3)

    return {
        "connections": runs[0].connections,
        "threads": runs[0].threads,
        "seconds": med("seconds"),
        "requests": int(med("requests")),
        "requests_per_s": med("requests_per_s"),
        "latency_p50_ms": med("latency_p50_ms"),
        "latency_p90_ms": med("latency_p90_ms"),
        "latency_p99_ms": med("latency_p99_ms"),
        "latency_max_ms": max(r.latency_max_ms for r in runs),
        "errors": sum(r.errors for r in runs),
        "bytes_per_response": runs[0].bytes_per_response,
    }


def _profile(
    backend: str,
    pid: int,
    url: str,
    token: str,
    opts: Options,
    tools: Tools,
    workdir: Path,
    log: Log,
) -> dict[str, Any] | None:
    """Two py-spy samples of GetChannel under load: GIL holder (CPU), then all busy threads."""
    if profiling.py_spy() is None:
        log(f"[{backend}] py-spy is not installed: no profile")
        return None
    conns = max(opts.connections)
    ep = Endpoint("GetChannel", "GET", "")
    out = opts.results_dir / f"profile-{opts.size}-{backend}-getchannel.txt"
    summaries: dict[str, Any] = {"file": out.name}
    texts = []
    for gil, label in ((True, "cpu"), (False, "wall")):
        log(
            f"[{backend}] profiling GetChannel c={conns} ({label}) for {opts.profile_seconds:.0f} s"
        )
        summary = profiling.profile_during(
            pid,
            opts.profile_seconds,
            lambda: _wrk(tools, url, ep, token, conns, opts.profile_seconds),
            workdir,
            gil=gil,
        )
        summaries[label] = summary
        what = "thread holding the GIL" if gil else "all busy threads, waits included"
        texts.append(
            profiling.render(
                summary or {},
                f"GetChannel, size {opts.size}, {backend}, {conns} connections: {what}",
            )
        )
    out.write_text("\n".join(texts))
    return summaries


def _profile_push(
    backend: str,
    pid: int,
    base_url: str,
    token: str,
    targets: Targets,
    opts: Options,
    workdir: Path,
    log: Log,
) -> dict[str, Any] | None:
    """A py-spy sample (GIL holder) of the server while the most pushers push."""
    pushers = max(opts.pushers)
    log(f"[{backend}] profiling push with {pushers} pushers for {opts.profile_seconds:.0f} s")
    summary = profiling.profile_during(
        pid,
        opts.profile_seconds,
        lambda: _push(base_url, token, targets, pushers=pushers, seconds=opts.profile_seconds),
        workdir,
        gil=True,
    )
    out = opts.results_dir / f"profile-{opts.size}-{backend}-push.txt"
    title = f"Push, size {opts.size}, {backend}, {pushers} pushers: thread holding the GIL"
    out.write_text(profiling.render(summary or {}, title))
    return summary


def _push(
    base_url: str,
    token: str,
    targets: Targets,
    *,
    pushers: int,
    seconds: float,
    buckets: list[str] | None = None,
) -> PushResult:
    """``pushers`` concurrent Packer pushes into ``buckets`` (the seeded push buckets) for
    ``seconds``."""
    return asyncio.run(
        run_pushers(
            base_url,
            token,
            project_prefix(targets.organization_id, targets.project_id),
            buckets or targets.push_buckets,
            pushers=pushers,
            seconds=seconds,
            channel=targets.push_channel,
        )
    )


def _push_dead_webhook(
    backend: str, base_url: str, token: str, targets: Targets, opts: Options, log: Log
) -> dict[str, Any]:
    """Pushes without a webhook and with one subscribed to every event whose receiver is
    dead (bench/webhooks.py), alternated; the medians and their ratio."""
    n = opts.webhook_pushers
    log(f"[{backend}] push with a dead webhook receiver vs none, {n} pushers")
    found = webhooks.compare(
        lambda: _push(base_url, token, targets, pushers=n, seconds=opts.duration),
        lambda: webhooks.dead_webhook(base_url, token, targets.project_id),
        rounds=opts.webhook_rounds,
        log=lambda m: log(f"[{backend}] {m}"),
    )
    log(
        f"[{backend}] dead webhook receiver: {found['versions_per_s_dead_receiver']:.1f} "
        f"versions/s against {found['versions_per_s_without']:.1f} without "
        f"({found['ratio']} x)"
    )
    return found


def _revoke(base_url: str, token: str, targets: Targets, log: Log, backend: str) -> dict[str, Any]:
    assert targets.revocation_project_id and targets.revocation_bucket
    prefix = project_prefix(targets.organization_id, targets.revocation_project_id)
    path = f"{prefix}/buckets/{targets.revocation_bucket}/versions/{targets.revocation_fingerprint}"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
        started = time.perf_counter()
        response = client.patch(
            path, json={"revoke_in": "0s", "revocation_message": "benchmark revocation"}
        )
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            note = _describe_error(response)
            log(f"[{backend}] revocation skipped: {note}")
            return {"skipped": note, "descendants": targets.revocation_descendants}
        # One descendant deep in the forest must now be revoked too.
        probe = (
            f"{prefix}/buckets/{targets.revocation_probe_bucket}"
            f"/versions/{targets.revocation_probe_fingerprint}"
        )
        status = client.get(probe)
        inherited = (
            status.json()["version"]["status"]
            if status.status_code == 200
            else _describe_error(status)
        )
    log(
        f"[{backend}] revoked a version with {targets.revocation_descendants} descendants "
        f"in {seconds:.2f} s"
    )
    return {
        "seconds": round(seconds, 3),
        "descendants": targets.revocation_descendants,
        "descendant_status_after": inherited,
    }
