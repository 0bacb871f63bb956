"""``python -m bench run --size S``: the whole benchmark, results in bench/results/."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, report
from bench.loadgen import ToolMissing, ensure_tools
from bench.profiling import py_spy
from bench.runner import Options, Tools, run_backend
from bench.seed import SIZES, RevocationShape, seed

RESULTS = Path(__file__).parent / "results"
BACKENDS = ("sqlite", "postgresql")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _log(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="seed, load and measure; write bench/results/<size>.*")
    run.add_argument("--size", default="S", help=f"one of {', '.join(SIZES)}, or several: S,L")
    run.add_argument(
        "--backend",
        action="append",
        choices=BACKENDS,
        help="sqlite and/or postgresql (repeatable; default both)",
    )
    run.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    run.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per endpoint")
    run.add_argument("--connections", type=_ints, default=[1, 16], help="e.g. 1,16")
    run.add_argument(
        "--pushers", type=_ints, default=[1, 8, 16], help="concurrent pushers, e.g. 1,8,16"
    )
    run.add_argument(
        "--nginx-rounds", type=int, default=2, help="nginx/Packyard GetChannel alternations"
    )
    run.add_argument(
        "--workers", type=int, default=1, help="packyard serve --workers (server processes)"
    )
    run.add_argument("--no-nginx", action="store_true", help="skip the nginx reference")
    run.add_argument("--no-revocation", action="store_true", help="skip the revocation scenario")
    run.add_argument("--no-console", action="store_true", help="skip the console's pages")
    run.add_argument(
        "--console-requests",
        type=int,
        default=50,
        help="sequential requests per console page, after a warm-up",
    )
    run.add_argument(
        "--console-wrk",
        type=float,
        default=5.0,
        help="seconds of wrk per console page at the highest connection count (0: none)",
    )
    run.add_argument(
        "--webhook-rounds",
        type=int,
        default=2,
        help="push alternations without / with a webhook whose receiver is dead (0: none)",
    )
    run.add_argument(
        "--webhook-pushers", type=int, default=8, help="pushers of the dead-webhook comparison"
    )
    run.add_argument(
        "--no-uncached",
        action="store_true",
        help="skip the reads on a second server with the response cache off",
    )
    run.add_argument(
        "--no-mixed", action="store_true", help="skip GetChannel while pushers push (mixed load)"
    )
    run.add_argument(
        "--mixed-pushers", type=int, default=16, help="pushers of the mixed load (default 16)"
    )
    run.add_argument(
        "--no-two-servers",
        action="store_true",
        help="skip pushes spread over two servers on one PostgreSQL",
    )
    run.add_argument(
        "--two-server-pushers",
        type=int,
        default=16,
        help="pushers of the one-vs-two-servers comparison (default 16)",
    )
    run.add_argument("--profile", action="store_true", help="py-spy profile of GetChannel")
    run.add_argument("--results-dir", type=Path, default=RESULTS)
    run.add_argument("--keep", action="store_true", help="keep the data directories")
    rep = sub.add_parser(
        "report", help="judge the targets and write the markdown again from the JSON results"
    )
    rep.add_argument("--results-dir", type=Path, default=RESULTS)
    s = sub.add_parser("seed", help="only time the seeding of a size (nothing is kept)")
    s.add_argument("--size", default="S")
    s.add_argument("--backend", choices=BACKENDS, default="sqlite")
    s.add_argument("--no-revocation", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "seed":
        return _seed_only(args)
    if args.command == "report":
        return _rejudge(args.results_dir)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    sizes = [x.strip().upper() for x in args.size.split(",") if x.strip()]
    for size in sizes:
        if size not in SIZES:
            print(f"unknown size {size}; choose from {', '.join(SIZES)}", file=sys.stderr)
            return 2
    if args.profile and py_spy() is None:
        # Refused before a run of half an hour whose results would sit beside the profiles
        # of an earlier one.
        print("error: --profile needs py-spy: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    backends = args.backend or list(BACKENDS)
    try:
        paths = ensure_tools(["wrk"] + ([] if args.no_nginx else ["nginx"]), log=_log)
    except ToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tools = Tools(wrk=paths["wrk"], nginx=paths.get("nginx"))
    if "postgresql" in backends and shutil.which("pg_config") is None:
        _log("PostgreSQL server binaries are missing: running SQLite only")
        backends = [b for b in backends if b != "postgresql"]
    args.results_dir.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        opts = Options(
            size=size,
            shape=SIZES[size],
            backends=backends,
            duration=args.duration,
            warmup=args.warmup,
            connections=args.connections,
            pushers=args.pushers,
            nginx_rounds=args.nginx_rounds,
            workers=args.workers,
            revocation=None if args.no_revocation else RevocationShape(),
            profile=args.profile,
            profile_seconds=args.duration,
            results_dir=args.results_dir,
            keep=args.keep,
            console=not args.no_console,
            console_requests=max(1, args.console_requests),
            console_wrk_seconds=max(0.0, args.console_wrk),
            webhook_rounds=max(0, args.webhook_rounds),
            webhook_pushers=max(1, args.webhook_pushers),
            uncached=not args.no_uncached,
            mixed=not args.no_mixed,
            mixed_pushers=max(1, args.mixed_pushers),
            two_servers=not args.no_two_servers,
            two_server_pushers=max(1, args.two_server_pushers),
        )
        result = _run_size(opts, tools)
        _write(result, args.results_dir)
    # The sizes judge each other (L against S): judge them all again against the newest.
    return _rejudge(args.results_dir)


def _rejudge(directory: Path) -> int:
    """Judge every size's results against the other sizes present and write them again."""
    found = False
    for size in SIZES:
        result = report.load(directory / f"{size}.json")
        if result is not None:
            found = True
            _write(result, directory)
    if not found:
        print(f"error: no results in {directory}", file=sys.stderr)
        return 1
    return 0


def _run_size(opts: Options, tools: Tools) -> dict[str, Any]:
    started = datetime.now(UTC)
    result: dict[str, Any] = {
        "size": opts.size,
        "shape": {
            "buckets": opts.shape.buckets,
            "versions": opts.shape.versions,
            "builds": opts.shape.builds,
            "regions": opts.shape.regions,
            "family": opts.shape.family,
        },
        "started_at": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine.describe(),
        "settings": {
            "duration_s": opts.duration,
            "warmup_s": opts.warmup,
            "connections": opts.connections,
            "pushers": opts.pushers,
            "nginx_rounds": opts.nginx_rounds,
            "wrk_threads": "min(connections, cores)",
            "console_requests": opts.console_requests if opts.console else 0,
            "console_wrk_s": opts.console_wrk_seconds if opts.console else 0,
            "webhook_rounds": opts.webhook_rounds,
            "webhook_pushers": opts.webhook_pushers,
            "uncached": opts.uncached,
            "mixed_pushers": opts.mixed_pushers if opts.mixed else 0,
            "two_server_pushers": opts.two_server_pushers if opts.two_servers else 0,
        },
        "backends": {},
    }
    t0 = time.perf_counter()
    for backend in opts.backends:
        result["backends"][backend] = run_backend(backend, opts, tools, _log)
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["notes"] = _notes(result, opts)
    return result


def _notes(result: dict[str, Any], opts: Options) -> list[str]:
    notes = [
        "2 shared cores: wrk (threads = min(connections, cores)), `packyard serve` ("
        + (
            "one process serving"
            if opts.workers == 1
            else f"granian's supervisor and {opts.workers} worker processes"
        )
        + "), PostgreSQL and nginx "
        "(worker_processes auto) compete for them; compare runs on the same machine only.",
        "Both servers answer plain HTTP on 127.0.0.1 (`packyard serve --no-tls`), so the "
        "nginx ratio compares application work, not TLS.",
        "PostgreSQL is a throwaway cluster (initdb/pg_ctl, Unix socket, fsync, "
        "synchronous_commit and full_page_writes off) analysed after seeding; SQLite runs "
        "as Packyard configures it (WAL, synchronous=NORMAL), without ANALYZE.",
        "Console pages are timed after the API reads and before the pushes, on the same "
        "server; a "
        "session's last use is written at most once a minute, so about one page view a "
        "minute costs one write more than the statements column shows.",
        "Push: each pusher is one `packer build` of two builds on its own bucket; the "
        "UpdateChannel after the first DONE meets an incomplete version (code 9), which "
        "Packer only prints, so it is counted but not a failure.",
        "Dead webhook receiver: push runs in ABBA pairs without a webhook and with one subscribed "
        "to every event whose receiver answered its verification, then accepts connections "
        "and never answers (each delivery attempt waits for the 10 s timeout, then backs off); "
        "the webhook and its queued deliveries are deleted after each run with it.",
        "Uncached reads: a second `packyard serve` on the same database with "
        "`PACKYARD_RESPONSE_CACHE_MB=0`, after the cached reads, while the first server idles.",
        "Reads while pushing: the pushers push into the project's other buckets (not the read "
        "bucket); a push moves the generation keys of its own bucket (and, as its version "
        "completes, what the bucket's ancestry neighbours depend on), so the read bucket's "
        "cached answers stay valid unless it is one ancestry edge from a pushed bucket.",
        "Two servers: one pusher run against the first server, then one spread over it and a "
        "second server on the same PostgreSQL database, not alternated; PostgreSQL's "
        "`pg_stat_activity` and ungranted `pg_locks` sampled every ~30 ms from a connection "
        "of their own (its queries add a little load).",
        "Cost: user + system CPU time from /proc/<pid>/stat of the server's processes (and of "
        "PostgreSQL's postmaster and backends) over the measured run only.",
    ]
    for backend, data in result["backends"].items():
        seed_s = data["seed"]["seconds"]
        large = SIZES["L"]
        if opts.shape != large and seed_s:
            factor = large.total_artifacts / opts.shape.total_artifacts
            notes.append(
                f"Seeding {backend}: {seed_s:.2f} s at size {opts.size}; size L has "
                f"{factor:.0f}x the rows, so about {seed_s * factor:.0f} s by linear "
                "extrapolation."
            )
        for endpoint, by_conns in data.get("reads", {}).items():
            for conns, r in by_conns.items():
                if r["errors"]:
                    notes.append(
                        f"{endpoint} on {backend} at {conns} connections: {r['errors']} errors "
                        "(non-2xx answers, timeouts or socket errors)."
                    )
        uncached = data.get("uncached") or {}
        for endpoint, by_conns in uncached.get("reads", {}).items():
            for conns, r in by_conns.items():
                if r["errors"]:
                    notes.append(
                        f"Uncached {endpoint} on {backend} at {conns} connections: "
                        f"{r['errors']} errors."
                    )
        mixed = data.get("mixed") or {}
        if mixed and (mixed["during_pushes"]["errors"] or mixed["push"]["failures"]):
            notes.append(
                f"Reads while pushing on {backend}: {mixed['during_pushes']['errors']} read "
                f"errors, {mixed['push']['failures']} failed pushes (first: "
                f"{mixed['push']['first_failure'][:160]})."
            )
        for conns, r in data.get("nginx_static_getchannel", {}).items():
            if r["errors"]:
                notes.append(f"nginx at {conns} connections: {r['errors']} errors.")
        for name, why in data.get("skipped", {}).items():
            notes.append(f"{name} on {backend} skipped: the server answered {why}.")
        found = data.get("console") or {}
        if found.get("error"):
            notes.append(f"Console on {backend}: {found['error'][:200]}")
        for name, page in found.get("pages", {}).items():
            state = page.get("state") or (page.get("sql") or {}).get("state")
            status = page.get("status") or (page.get("sql") or {}).get("status")
            if state in ("missing", "error"):
                what = "not written yet" if state == "missing" else "failed"
                notes.append(
                    f"Console page {name} on {backend}: {what} (HTTP {status}), not timed."
                )
        rev = data.get("revocation") or {}
        if "skipped" in rev:
            notes.append(f"Revocation on {backend} skipped: the server answered {rev['skipped']}.")
    return notes


def _write(result: dict[str, Any], directory: Path) -> None:
    size = result["size"]
    other = {"S": "L", "L": "S"}.get(size)
    others = {size: result}
    if other:
        loaded = report.load(directory / f"{other}.json")
        if loaded:
            others[other] = loaded
    result["targets"] = report.evaluate(result, others.get("S"), others.get("L"))
    (directory / f"{size}.json").write_text(json.dumps(result, indent=2) + "\n")
    (directory / f"{size}.md").write_text(report.markdown(result))
    _log(f"results: {directory / f'{size}.json'} and {size}.md")
    for t in result["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[t["pass"]]
        value = "—" if t["value"] is None else f"{t['value']:.3g} {t['unit']}"
        _log(f"  {verdict} {t['target']}: {value}")


def _seed_only(args: argparse.Namespace) -> int:
    from packyard.server import prepare
    from packyard.services.bootstrap import load_credentials

    shape = SIZES[args.size.upper()]
    workdir = Path(tempfile.mkdtemp(prefix="packyard-bench-seed-"))
    cluster: Any = None
    try:
        url = None
        if args.backend == "postgresql":
            from tests.support.postgres import start_cluster

            cluster = start_cluster()
            url = cluster.create_database("packyard_bench")
        services, _ = prepare(workdir / "data", url)
        creds = load_credentials(workdir / "data")
        assert creds is not None
        rep = seed(
            services.store,
            creds.organization_id,
            creds.project_id,
            shape,
            revocation=None if args.no_revocation else RevocationShape(),
            progress=_log,
        )
        rows = sum(rep.rows.values())
        _log(
            f"{args.backend}, size {args.size}: {rows:,} rows in {rep.seconds:.2f} s "
            f"({rows / rep.seconds:,.0f} rows/s); revocation forest {rep.revocation_seconds:.2f} s"
        )
        services.store.dispose()
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
