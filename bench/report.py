"""Targets (pass/fail) and the JSON and markdown results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HOT = "16"  # the connection count the throughput targets are judged at
HOT_PUSHERS = 16  # the pusher count the write-path comparisons are judged at
NGINX_RATIO = 0.28  # cached GetChannel on SQLite vs nginx serving its body
RSS_MB = 100.0  # the default single-worker server at size L after the whole benchmark
UNCACHED_GETCHANNEL = {"sqlite": 3000.0, "postgresql": 2000.0}  # req/s at 16 connections, L
MIXED_RATIO = 0.5  # GetChannel while 16 pushers push vs quiet
MIXED_P99_MS = 20.0
PG_CACHED_P99_MS = 15.0  # every cached read on PostgreSQL at 16 connections, size L
PG_PUSH_RATIO = 0.8  # PostgreSQL's push rate vs SQLite's (16 pushers)
TWO_SERVERS_RATIO = 1.0  # two servers on one PostgreSQL vs one
CACHED_READS = ("GetChannel", "GetVersion", "GetBucket", "ListBuckets", "SearchExternalArtifact")


def _reads(result: dict[str, Any] | None, backend: str, endpoint: str) -> dict[str, Any] | None:
    if not result:
        return None
    got = result.get("backends", {}).get(backend, {}).get("reads", {}).get(endpoint, {})
    value = got.get(HOT)
    return value if isinstance(value, dict) else None


def _target(
    name: str, value: float | None, threshold: float, *, at_least: bool, unit: str, note: str = ""
) -> dict[str, Any]:
    if value is None:
        verdict: bool | None = None
    else:
        verdict = value >= threshold if at_least else value <= threshold
    return {
        "target": name,
        "value": None if value is None else round(value, 4),
        "threshold": threshold,
        "comparison": ">=" if at_least else "<=",
        "unit": unit,
        "pass": verdict,
        "note": note,
    }


def cost_figures(
    count: int, per: int, server_s: float | None, database_s: float | None, **about: Any
) -> dict[str, Any]:
    """CPU seconds a piece of work cost the server (and PostgreSQL), and per ``per`` units
    of it (a million requests, a thousand pushes)."""

    def each(seconds: float | None) -> float | None:
        return round(seconds / count * per, 3) if seconds is not None and count else None

    return {
        **about,
        "count": count,
        "per": per,
        "server_cpu_s": server_s,
        "database_cpu_s": database_s,
        "server_cpu_s_per": each(server_s),
        "database_cpu_s_per": each(database_s),
    }


def _at_l(result: dict[str, Any], value: float | None, unit: str) -> tuple[float | None, str]:
    """A value judged at size L only: at other sizes it is reported in the note."""
    if result.get("size") == "L":
        return value, ""
    shown = "not measured" if value is None else f"{value:,.4g} {unit}"
    return None, f"judged at size L; {shown} at size {result.get('size')}"


def _push_rate(data: dict[str, Any], pushers: int) -> float | None:
    return next(
        (p["versions_per_s"] for p in data.get("push", []) if p["pushers"] == pushers), None
    )


def _round3_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 19's targets: uncached reads, reads while pushing, PostgreSQL's write path with
    one and two servers, and PostgreSQL's cached read latency."""
    backends = result.get("backends", {})
    sqlite = backends.get("sqlite", {})
    pg = backends.get("postgresql", {})
    out: list[dict[str, Any]] = []
    for backend, data in (("sqlite", sqlite), ("postgresql", pg)):
        if not data:
            continue
        uncached = data.get("uncached") or {}
        got = (uncached.get("reads", {}).get("GetChannel") or {}).get(HOT)
        value, note = _at_l(result, got["requests_per_s"] if got else None, "req/s")
        out.append(
            _target(
                f"Uncached GetChannel on {backend} (response cache off), 16 connections",
                value,
                UNCACHED_GETCHANNEL[backend],
                at_least=True,
                unit="req/s",
                note=note if uncached else "not run",
            )
        )
    for backend, data in (("sqlite", sqlite), ("postgresql", pg)):
        if not data:
            continue
        mixed = data.get("mixed") or {}
        during = mixed.get("during_pushes") or {}
        what = (
            f"{mixed['pushers']} pushers into other buckets of the project"
            if mixed
            else "pushes into other buckets of the project"
        )
        pushed = (mixed.get("push") or {}).get("versions_per_s")
        note = (
            f"{during['requests_per_s']:,.0f} vs {mixed['quiet']['requests_per_s']:,.0f} req/s "
            f"quiet; {pushed:.1f} versions/s pushed meanwhile"
            if mixed
            else "not run"
        )
        out.append(
            _target(
                f"GetChannel on {backend} while {what} vs quiet (16 connections)",
                mixed.get("ratio"),
                MIXED_RATIO,
                at_least=True,
                unit="x quiet",
                note=note,
            )
        )
        out.append(
            _target(
                f"GetChannel on {backend} while pushing, p99 latency (16 connections)",
                during.get("latency_p99_ms"),
                MIXED_P99_MS,
                at_least=False,
                unit="ms",
                note="" if mixed else "not run",
            )
        )
    sqlite_rate = _push_rate(sqlite, HOT_PUSHERS) if sqlite else None
    pg_rate = _push_rate(pg, HOT_PUSHERS) if pg else None
    out.append(
        _target(
            f"Push rate on PostgreSQL vs SQLite ({HOT_PUSHERS} pushers, write path)",
            pg_rate / sqlite_rate if pg_rate is not None and sqlite_rate else None,
            PG_PUSH_RATIO,
            at_least=True,
            unit="x SQLite",
            note=(
                f"{pg_rate:.1f} vs {sqlite_rate:.1f} versions/s"
                if pg_rate is not None and sqlite_rate
                else f"needs both backends pushed with {HOT_PUSHERS} pushers"
            ),
        )
    )
    if pg:
        two = pg.get("two_servers") or {}
        out.append(
            _target(
                "Push rate with the pushers spread over two servers on one PostgreSQL vs one "
                f"server ({two.get('pushers', HOT_PUSHERS)} pushers)",
                two.get("ratio"),
                TWO_SERVERS_RATIO,
                at_least=True,
                unit="x one server",
                note=(
                    f"{two['two_servers']['push']['versions_per_s']:.1f} vs "
                    f"{two['one_server']['push']['versions_per_s']:.1f} versions/s"
                    if two
                    else "not run"
                ),
            )
        )
        worst: tuple[float, str] | None = None
        for endpoint in CACHED_READS:
            got = _reads(result, "postgresql", endpoint)
            if got and (worst is None or got["latency_p99_ms"] > worst[0]):
                worst = (got["latency_p99_ms"], endpoint)
        value, note = _at_l(result, worst[0] if worst else None, "ms")
        out.append(
            _target(
                "Every cached read on PostgreSQL, 16 connections, p99 latency (the slowest)",
                value,
                PG_CACHED_P99_MS,
                at_least=False,
                unit="ms",
                note="; ".join(x for x in (f"slowest: {worst[1]}" if worst else "", note) if x),
            )
        )
    return out


def evaluate(
    result: dict[str, Any], s_result: dict[str, Any] | None, l_result: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The issue's targets, judged on this run (and the other size's results when present)."""
    backends = result.get("backends", {})
    sqlite = backends.get("sqlite", {})
    pg = backends.get("postgresql", {})
    out: list[dict[str, Any]] = []

    ratio = sqlite.get("getchannel_ratio_to_nginx", {}).get(HOT)
    out.append(
        _target(
            "GetChannel on SQLite, 16 connections, vs nginx serving the same body statically",
            ratio,
            NGINX_RATIO,
            at_least=True,
            unit="x nginx",
            note="" if sqlite else "SQLite not run",
        )
    )
    gc = _reads(result, "sqlite", "GetChannel")
    out.append(
        _target(
            "GetChannel on SQLite, 16 connections, p99 latency",
            gc["latency_p99_ms"] if gc else None,
            10.0,
            at_least=False,
            unit="ms",
        )
    )
    for backend in ("sqlite", "postgresql"):
        for endpoint in ("GetChannel", "ListBuckets", "SearchExternalArtifact"):
            small = _reads(s_result, backend, endpoint)
            large = _reads(l_result, backend, endpoint)
            value = None
            note = ""
            if small and large and small["requests_per_s"]:
                value = large["requests_per_s"] / small["requests_per_s"]
            elif s_result is None or l_result is None:
                note = "needs results of both sizes S and L"
            else:
                skipped = (l_result or {}).get("backends", {}).get(backend, {}).get("skipped", {})
                note = skipped.get(endpoint, "not measured on both sizes")
            out.append(
                _target(
                    f"{endpoint} on {backend}: size L vs size S (16 connections)",
                    value,
                    0.8,
                    at_least=True,
                    unit="x S",
                    note=note,
                )
            )
    pg_gc = _reads(result, "postgresql", "GetChannel")
    out.append(
        _target(
            "GetChannel on PostgreSQL vs SQLite (16 connections)",
            pg_gc["requests_per_s"] / gc["requests_per_s"] if pg_gc and gc else None,
            0.5,
            at_least=True,
            unit="x SQLite",
            note="" if pg and sqlite else "needs both backends",
        )
    )
    pushes = sqlite.get("push", [])
    best = max((p["versions_per_s"] for p in pushes), default=None)
    out.append(
        _target(
            "Two-build versions pushed per second on SQLite (best pusher count)",
            best,
            50.0,
            at_least=True,
            unit="versions/s",
        )
    )
    for backend, data in (("sqlite", sqlite), ("postgresql", pg)):
        dead = (data or {}).get("push_dead_webhook")
        if dead:
            out.append(
                _target(
                    f"Push rate on {backend} with a webhook whose receiver is dead vs none "
                    f"({dead['pushers']} pushers, median of {dead['rounds']} alternations)",
                    dead["ratio"],
                    0.9,
                    at_least=True,
                    unit="x no webhook",
                    note=(
                        f"{dead['versions_per_s_dead_receiver']:.1f} vs "
                        f"{dead['versions_per_s_without']:.1f} versions/s"
                    ),
                )
            )
    for backend, data in (("sqlite", sqlite), ("postgresql", pg)):
        if not data:
            continue
        rev = data.get("revocation") or {}
        out.append(
            _target(
                f"Revoking a version with {rev.get('descendants', 10000)} descendants on {backend}",
                rev.get("seconds"),
                2.0,
                at_least=False,
                unit="s",
                note=rev.get("skipped", "") if rev else "not run",
            )
        )
    out += _round3_targets(result)
    for backend, data in (("sqlite", sqlite), ("postgresql", pg)):
        if data and "console" in data:
            out.append(_console_target(result, backend, data["console"]))
    for backend, data in (("sqlite", sqlite), ("postgresql", pg)):
        if not data:
            continue
        memory = data.get("memory_mb") or {}
        peak = memory.get("under_load_peak") or {}
        after = memory.get("after_benchmark") or {}
        found = [m["resident"] for m in (peak, after) if m.get("resident") is not None]
        rss = max(found) if found else None
        target = _target(
            f"Server RSS at size L on {backend}, peak under load and after the whole benchmark "
            "(resident pages of all its processes, each counted once)",
            rss if result.get("size") == "L" else None,
            RSS_MB,
            at_least=False,
            unit="MB",
            note=(
                f"{peak.get('processes')} processes; per-process RSS summed: "
                f"{peak.get('rss_sum')} MB"
                if result.get("size") == "L"
                else f"judged at size L; {rss} MB at size {result.get('size')}"
            ),
        )
        out.append(target)
    return out


CONSOLE_TARGET_MS = 50.0


def _console_target(result: dict[str, Any], backend: str, found: dict[str, Any]) -> dict[str, Any]:
    """Every console page answers in under 50 ms at size L: the slowest page's median server
    time. Not judged while a page is missing; failed when a page answers with an error."""
    pages: dict[str, dict[str, Any]] = found.get("pages", {})
    timed = {n: p for n, p in pages.items() if p.get("state") == "ok" and "median_ms" in p}
    missing = sorted(n for n, p in pages.items() if p.get("state") == "missing")
    errors = sorted(
        f"{n} (HTTP {p.get('status')})" for n, p in pages.items() if p.get("state") == "error"
    )
    slowest = max(timed, key=lambda n: timed[n]["median_ms"], default=None)
    value = timed[slowest]["median_ms"] if slowest else None
    notes = []
    if slowest:
        notes.append(f"slowest: {slowest} (p95 {timed[slowest]['p95_ms']:.1f} ms)")
    if missing:
        notes.append(f"missing: {', '.join(missing)}")
    if errors:
        notes.append(f"errors: {', '.join(errors)}")
    if found.get("error"):
        notes.append(f"console phase failed: {found['error'][:160]}")
    at_l = result.get("size") == "L"
    if not at_l:
        notes.append(f"judged at size L (this is size {result.get('size')})")
    target = _target(
        f"Every console page on {backend}: median server time, sequential requests, at size L",
        value,
        CONSOLE_TARGET_MS,
        at_least=False,
        unit="ms",
        note="; ".join(notes),
    )
    if not at_l or missing or not timed or found.get("error"):
        target["pass"] = None
    if at_l and errors:
        target["pass"] = False
    return target


def load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _verdict(t: dict[str, Any]) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]


def _console_markdown(result: dict[str, Any]) -> list[str]:
    backends = {b: d["console"] for b, d in result["backends"].items() if "console" in d}
    if not backends:
        return []
    settings = result.get("settings", {})
    lines = [
        "",
        "## Console pages (signed in as a project admin, plain HTTP on loopback)",
        "",
        f"Server time: {settings.get('console_requests', 50)} sequential requests per page on "
        "one keep-alive connection after a warm-up, timed by the client (an upper bound of the "
        "server's time). Statements: per request, in-process, one warm-up then the average of "
        "three. wrk: throughput at the highest connection count. *missing*: the page is not "
        "written yet.",
        "",
        "| backend | page | median ms | p95 ms | p99 ms | max ms | statements | wrk req/s "
        "| wrk p99 ms | bytes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, found in backends.items():
        if found.get("error") and not found.get("pages"):
            lines.append(f"| {backend} | — | failed: {found['error'][:120]} | | | | | | | |")
        for name, p in found.get("pages", {}).items():
            sql = p.get("sql") or {}
            statements = _fmt(sql.get("statements")) if sql.get("state") == "ok" else "—"
            state = p.get("state", sql.get("state"))
            if state != "ok" or "median_ms" not in p:
                status = p.get("status", sql.get("status"))
                lines.append(
                    f"| {backend} | {name} | {state} (HTTP {status}) | | | | {statements} | | | |"
                )
                continue
            w = p.get("wrk") or {}
            lines.append(
                f"| {backend} | {name} | {p['median_ms']:.1f} | {p['p95_ms']:.1f} | "
                f"{p['p99_ms']:.1f} | {p['max_ms']:.1f} | {statements} | "
                f"{_fmt(w.get('requests_per_s'))} | {_fmt(w.get('latency_p99_ms'), 2)} | "
                f"{_fmt(p.get('bytes'), 0)} |"
            )
    return lines


def _dead_webhook_markdown(result: dict[str, Any]) -> list[str]:
    found = {
        b: d["push_dead_webhook"]
        for b, d in result["backends"].items()
        if d.get("push_dead_webhook")
    }
    if not found:
        return []
    lines = [
        "",
        "## Write path with a dead webhook receiver",
        "",
        "Push runs in ABBA pairs: no webhook, and a webhook subscribed to every event whose "
        "receiver answered its verification, then accepts connections and never answers "
        "(deleted with its queue after each run). Medians; attempts swallowed: delivery "
        "attempts the dead receiver held (each waits for the 10 s timeout, then backs off).",
        "",
        "| backend | pushers | rounds | versions/s, no webhook | versions/s, dead receiver "
        "| ratio | p50 ms, no webhook | p50 ms, dead receiver | attempts swallowed | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, d in found.items():
        lines.append(
            f"| {backend} | {d['pushers']} | {d['rounds']} | {d['versions_per_s_without']:.1f} | "
            f"{d['versions_per_s_dead_receiver']:.1f} | {_fmt(d['ratio'], 3)} | "
            f"{d['p50_ms_without']:.0f} | {d['p50_ms_dead_receiver']:.0f} | "
            f"{d['delivery_attempts_swallowed']} | {d['failures']} |"
        )
    return lines


def _wrk_cells(r: dict[str, Any] | None) -> str:
    if not r:
        return "— | — | —"
    return f"{_fmt(r['requests_per_s'])} | {r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f}"


def _uncached_markdown(result: dict[str, Any]) -> list[str]:
    found = {b: d["uncached"] for b, d in result["backends"].items() if d.get("uncached")}
    if not found:
        return []
    lines = [
        "",
        "## Uncached reads (a second server with `PACKYARD_RESPONSE_CACHE_MB=0`)",
        "",
        "The same reads on a server started on the same database with the response cache off "
        "(the first server idles meanwhile): every request does the work the statements column "
        "counts. Cached: the read-path table's figures beside them.",
        "",
        "| backend | endpoint | conns | req/s | p50 ms | p99 ms | errors | cached req/s "
        "| uncached / cached |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, u in found.items():
        cached_reads = result["backends"][backend].get("reads", {})
        for endpoint, by_conns in u.get("reads", {}).items():
            for conns, r in by_conns.items():
                cached = (cached_reads.get(endpoint) or {}).get(conns) or {}
                rate = cached.get("requests_per_s")
                ratio = r["requests_per_s"] / rate if rate else None
                lines.append(
                    f"| {backend} | {endpoint} | {conns} | {_wrk_cells(r)} | {r['errors']} | "
                    f"{_fmt(rate)} | {_fmt(ratio, 3)} |"
                )
    lines.append("")
    for backend, u in found.items():
        lines.append(
            f"- {backend}: the uncached server's `/metrics` counted {u.get('requests_counted')} "
            f"requests, cache hit ratio {_fmt(u.get('cache_hit_ratio'), 3)} "
            "(— : no cache lookups, the cache is off)."
        )
    return lines


def _mixed_markdown(result: dict[str, Any]) -> list[str]:
    found = {b: d["mixed"] for b, d in result["backends"].items() if d.get("mixed")}
    if not found:
        return []
    lines = [
        "",
        "## Reads while pushing (response cache on)",
        "",
        "GetChannel with wrk on a quiet server, then again while pushers push continuously into "
        "other buckets of the same project (a push moves its own bucket's generation keys, which "
        "the cache checks; write requests give way to reads, see docs/ARCHITECTURE.md). The push "
        "rate is over the pushers' whole run, which starts "
        "a second before the reads and ends a second after them.",
        "",
        "| backend | conns | pushers | quiet req/s | quiet p50 ms | quiet p99 ms "
        "| pushing req/s | pushing p50 ms | pushing p99 ms | ratio | versions/s meanwhile "
        "| failed pushes | read errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, m in found.items():
        during = m["during_pushes"]
        lines.append(
            f"| {backend} | {m['connections']} | {m['pushers']} | {_wrk_cells(m['quiet'])} | "
            f"{_wrk_cells(during)} | {_fmt(m['ratio'], 3)} | "
            f"{m['push']['versions_per_s']:.1f} | {m['push']['failures']} | {during['errors']} |"
        )
    return lines


def _ranked(title: str, found: dict[str, float]) -> str:
    items = "; ".join(f"`{k}` {v:.2f}" for k, v in found.items())
    return f"  - {title}: {items or 'none'}"


def _two_servers_markdown(result: dict[str, Any]) -> list[str]:
    two = (result["backends"].get("postgresql") or {}).get("two_servers")
    if not two:
        return []
    lines = [
        "",
        "## Two servers on one PostgreSQL",
        "",
        f"{two['pushers']} pushers on {two['buckets']} buckets of the project against one server, "
        "then the same pushers spread over two `packyard serve` processes on the same database "
        "(pusher i on server i mod 2). `pg_stat_activity` and the ungranted `pg_locks` were "
        "sampled from a connection of their own throughout; the figures are averages per sample "
        "(backends of the benchmark's database). CPU: both servers' processes, and PostgreSQL's.",
        "",
        "| servers | versions/s | p50 ms | p99 ms | failed | backends | active "
        "| waiting on locks | idle in transaction | samples (ms apart) "
        "| server CPU s / 1,000 pushes | PostgreSQL CPU s / 1,000 pushes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    runs = (two["one_server"], two["two_servers"])
    for run in runs:
        p, a, c = run["push"], run["activity"], run.get("cost") or {}
        lines.append(
            f"| {run['servers']} | {p['versions_per_s']:.1f} | {p['version_p50_ms']:.0f} | "
            f"{p['version_p99_ms']:.0f} | {p['failures']} | {a['avg_backends']:.2f} | "
            f"{a['avg_active']:.2f} | {a['avg_waiting_on_locks']:.2f} | "
            f"{a['avg_idle_in_transaction']:.2f} | {a['samples']} ({_fmt(a['interval_ms'])}) | "
            f"{_fmt(c.get('server_cpu_s_per'), 2)} | {_fmt(c.get('database_cpu_s_per'), 2)} |"
        )
    lines += ["", f"Ratio, two servers vs one: {_fmt(two['ratio'], 3)} x. Per sample, on average:"]
    for run in runs:
        a = run["activity"]
        lines.append(f"- {run['servers']} server(s):")
        lines.append(_ranked("waiting on locks, by relation", a["waiting_by_relation"]))
        lines.append(_ranked("waiting on locks, by statement", a["waiting_by_statement"]))
        lines.append(_ranked("their blockers (state: statement)", a["blockers"]))
        lines.append(
            _ranked("idle in transaction, by last statement", a["idle_in_transaction_by_statement"])
        )
        lines.append(_ranked("wait events of backends not idle", a["wait_events"]))
        if a.get("error"):
            lines.append(f"  - sampling stopped: {a['error']}")
    return lines


def _cost_markdown(result: dict[str, Any]) -> list[str]:
    rows = []
    for backend, data in result["backends"].items():
        cost = data.get("cost") or {}
        for key, what in (
            ("getchannel_cached", "GetChannel, cached"),
            ("getchannel_uncached", "GetChannel, uncached"),
            ("push", "pushes (two-build versions)"),
        ):
            c = cost.get(key)
            if not c:
                continue
            load = (
                f"{c['connections']} connections"
                if "connections" in c
                else f"{c.get('pushers')} pushers"
            )
            unit = "million requests" if c["per"] == 1_000_000 else "thousand pushes"
            rows.append(
                f"| {backend} | {what} | {load} | {c['count']:,} | {unit} | "
                f"{_fmt(c['server_cpu_s'], 2)} | {_fmt(c['server_cpu_s_per'], 1)} | "
                f"{_fmt(c['database_cpu_s'], 2)} | {_fmt(c['database_cpu_s_per'], 1)} |"
            )
    if not rows:
        return []
    return [
        "",
        "## Cost (CPU seconds)",
        "",
        "User + system CPU time of the server's processes (with --workers N, granian's "
        "supervisor and its workers; from `/proc/<pid>/stat`) during the measurement, per "
        "million requests or per thousand pushes; PostgreSQL's processes (the postmaster and "
        "its backends) beside it.",
        "",
        "| backend | work | load | count | unit | server CPU s | server CPU s per unit "
        "| PostgreSQL CPU s | PostgreSQL CPU s per unit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ]


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Packyard benchmark, size {result['size']}",
        "",
        f"Run {result['started_at']} on revision `{m['packyard_revision']}`; "
        f"{result['settings']['duration_s']:.0f} s per measurement after a "
        f"{result['settings']['warmup_s']:.0f} s warm-up.",
        "",
        "**Indicative numbers:** the machine has 2 cores shared with other engineers, and the "
        "load generator, the server and its database all run on it.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
    ]
    for key in (
        "cpu_model",
        "cores",
        "ram_gib",
        "kernel",
        "python",
        "sqlite",
        "postgresql",
        "sqlalchemy",
        "fastapi",
        "granian",
        "wrk",
        "nginx",
        "load_average_at_start",
        "load_average_at_end",
    ):
        lines.append(f"| {key} | {m.get(key)} |")
    shape = result["shape"]
    lines += [
        "",
        "## Registry",
        "",
        f"{shape['buckets']} buckets x {shape['versions']} versions "
        f"({shape['buckets'] * shape['versions']:,} versions), {shape['builds']} builds x "
        f"{shape['regions']} regions per version "
        f"({shape['buckets'] * shape['versions'] * shape['builds'] * shape['regions']:,} "
        "artifacts); ancestry families of "
        f"{shape['family']} buckets; channels latest/production/staging/dev with history.",
        "",
    ]
    lines += [
        "| backend | seeding | rows | rows/s | revocation forest |",
        "| --- | --- | --- | --- | --- |",
    ]
    for backend, data in result["backends"].items():
        seed = data["seed"]
        lines.append(
            f"| {backend} | {seed['seconds']:.2f} s | {seed['rows_total']:,} | "
            f"{_fmt(seed['rows_per_s'], 0)} | {seed['revocation_forest_seconds']:.2f} s |"
        )
    lines += [
        "",
        "## Read path (wrk, plain HTTP on loopback)",
        "",
        "| backend | endpoint | conns | req/s | p50 ms | p99 ms | errors | bytes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, data in result["backends"].items():
        for endpoint, by_conns in data["reads"].items():
            for conns, r in by_conns.items():
                lines.append(
                    f"| {backend} | {endpoint} | {conns} | {_fmt(r['requests_per_s'])} | "
                    f"{r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f} | {r['errors']} | "
                    f"{_fmt(r['bytes_per_response'], 0)} |"
                )
        for conns, r in data.get("nginx_static_getchannel", {}).items():
            lines.append(
                f"| {backend} | nginx static (GetChannel body) | {conns} | "
                f"{_fmt(r['requests_per_s'])} | {r['latency_p50_ms']:.2f} | "
                f"{r['latency_p99_ms']:.2f} | {r['errors']} | {_fmt(r['bytes_per_response'], 0)} |"
            )
        for name, why in data.get("skipped", {}).items():
            lines.append(f"| {backend} | {name} | — | skipped: {why} | | | | |")
    lines += _console_markdown(result)
    lines += ["", "GetChannel throughput as a fraction of nginx static:", ""]
    for backend, data in result["backends"].items():
        ratios = ", ".join(
            f"{c} conn: {r:.3f}" for c, r in data.get("getchannel_ratio_to_nginx", {}).items()
        )
        lines.append(f"- {backend}: {ratios or 'not measured'}")
    lines += [
        "",
        "## Write path (Packer push sequence; each pusher pushes one version after another)",
        "",
        "| backend | pushers | versions/s | versions | failed | calls/s | p50 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, data in result["backends"].items():
        for p in data.get("push", []):
            lines.append(
                f"| {backend} | {p['pushers']} | {p['versions_per_s']:.1f} | {p['versions']} | "
                f"{p['failures']} | {p['calls_per_s']:.0f} | {p['version_p50_ms']:.0f} | "
                f"{p['version_p99_ms']:.0f} |"
            )
    lines += _dead_webhook_markdown(result)
    lines += _uncached_markdown(result)
    lines += _mixed_markdown(result)
    lines += _two_servers_markdown(result)
    lines += _cost_markdown(result)
    lines += [
        "",
        "## Revocation and memory",
        "",
        "Server memory: resident pages of the server's processes, each counted once (one "
        "process with one worker; forked workers share their supervisor's pages); "
        "per-process RSS summed and PSS beside it. The peak under load is sampled through "
        "the reads, pushes and mixed scenarios; the revocation's is sampled on its own, "
        "every 50 ms, while its one transaction runs.",
        "",
        "| backend | revocation | processes | resident after start | resident peak under load "
        "| resident peak during the revocation | resident after the benchmark "
        "| RSS summed, peak | PSS, peak |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, data in result["backends"].items():
        rev = data.get("revocation") or {}
        rev_text = (
            f"{rev['seconds']:.2f} s ({rev['descendants']:,} descendants)"
            if "seconds" in rev
            else f"skipped: {rev.get('skipped', 'not run')}"
        )
        memory = data.get("memory_mb") or {}
        start = memory.get("after_start") or {}
        peak = memory.get("under_load_peak") or {}
        revoking = memory.get("revocation_peak") or {}
        after = memory.get("after_benchmark") or {}
        lines.append(
            f"| {backend} | {rev_text} | {peak.get('processes', '—')} | "
            f"{_fmt(start.get('resident'))} MB | {_fmt(peak.get('resident'))} MB | "
            f"{_fmt(revoking.get('resident'))} MB | {_fmt(after.get('resident'))} MB | "
            f"{_fmt(peak.get('rss_sum'))} MB | {_fmt(peak.get('pss'))} MB |"
        )
    lines += [
        "",
        "## Metrics",
        "",
        "`/metrics` scraped once after the reads and pushes (from loopback): what it counted, "
        "and what a scrape costs. Recording a request is a few list additions on the hot path "
        '(see docs/ARCHITECTURE.md, "Metrics").',
        "",
        "| backend | requests counted | read-cache hit ratio | registry events | scrape |",
        "| --- | --- | --- | --- | --- |",
    ]
    for backend, data in result["backends"].items():
        scrape = data.get("metrics_scrape")
        if not scrape:
            lines.append(f"| {backend} | — | — | — | not scraped |")
            continue
        events = ", ".join(f"{k} {v:,}" for k, v in sorted(scrape["events"].items())) or "—"
        lines.append(
            f"| {backend} | {scrape['requests']:,} | {_fmt(scrape['cache_hit_ratio'], 3)} | "
            f"{events} | {scrape['scrape_ms']:.1f} ms, {scrape['bytes']:,} bytes |"
        )
    lines += [
        "",
        "## SQL statements per request (in-process counter)",
        "",
        "Uncached: the full work of a request (response cache off). Repeated: the same "
        "request again with the cache on (statements through SQLAlchemy + generation probes; "
        "the warm-up request of four is the only miss).",
        "",
        "| backend | request | statements | transactions | repeated: statements + probes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for backend, data in result["backends"].items():
        for name, c in data["sql_per_request"].items():
            status = "" if c.get("status", 200) == 200 else f" (HTTP {c['status']})"
            if name == "PushVersion":
                status = f" ({c['calls']} calls)"
            cached = c.get("cached")
            repeated = f"{_fmt(cached['statements'])} + {_fmt(cached['probes'])}" if cached else "—"
            lines.append(
                f"| {backend} | {name}{status} | {_fmt(c['statements'])} | "
                f"{_fmt(c['transactions'])} | {repeated} |"
            )
    lines += [
        "",
        "## Targets",
        "",
        "| target | value | threshold | verdict | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in result["targets"]:
        value = "—" if t["value"] is None else f"{t['value']:,.3g} {t['unit']}"
        lines.append(
            f"| {t['target']} | {value} | {t['comparison']} {t['threshold']} {t['unit']} | "
            f"{_verdict(t)} | {t['note']} |"
        )
    if result.get("notes"):
        lines += ["", "## Notes", ""]
        lines += [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"
