"""Issue 19's targets and sections of the benchmark report: uncached reads, reads while
pushing, one vs two servers on PostgreSQL, PostgreSQL's write and cached-read targets, costs."""

from __future__ import annotations

from typing import Any

import pytest
from bench.report import cost_figures, evaluate, markdown

READS = ("GetChannel", "GetVersion", "GetBucket", "ListBuckets", "SearchExternalArtifact")


def _wrk(rate: float, p99: float = 5.0, *, requests: int = 0, conns: int = 16) -> dict[str, Any]:
    return {
        "connections": conns,
        "threads": 2,
        "seconds": 10.0,
        "requests": requests or int(rate * 10),
        "requests_per_s": rate,
        "latency_p50_ms": 1.0,
        "latency_p90_ms": 2.0,
        "latency_p99_ms": p99,
        "latency_max_ms": p99 * 2,
        "errors": 0,
        "bytes_per_response": 900.0,
    }


def _push(rate: float, pushers: int = 16) -> dict[str, Any]:
    return {
        "pushers": pushers,
        "seconds": 10.0,
        "versions": int(rate * 10),
        "versions_per_s": rate,
        "failures": 0,
        "calls_per_s": rate * 12,
        "version_p50_ms": 300.0,
        "version_p99_ms": 600.0,
        "statuses": {},
        "first_failure": "",
        "loadgen_cpu": 0.05,
    }


def _activity(waiting: float) -> dict[str, Any]:
    return {
        "samples": 300,
        "seconds": 10.0,
        "interval_ms": 33.3,
        "avg_backends": 8.0,
        "avg_active": 4.0,
        "avg_idle_in_transaction": 0.5,
        "avg_waiting_on_locks": waiting,
        "waiting_by_relation": {"projects (row)": waiting},
        "waiting_by_statement": {"UPDATE projects SET generation": waiting},
        "blockers": {},
        "idle_in_transaction_by_statement": {},
        "wait_events": {"Lock:transactionid": waiting},
    }


def _backend(
    *,
    cached_p99: float = 5.0,
    uncached: float = 3500.0,
    push: float = 50.0,
    mixed: tuple[float, float] = (6000.0, 12.0),
    two: tuple[float, float] | None = None,
    rss: float = 90.0,
) -> dict[str, Any]:
    reads = {name: {"1": _wrk(5000.0, conns=1), "16": _wrk(12000.0, cached_p99)} for name in READS}
    data: dict[str, Any] = {
        "seed": {
            "seconds": 1.0,
            "rows_total": 10,
            "rows_per_s": 10,
            "revocation_forest_seconds": 0.1,
        },
        "reads": reads,
        "nginx_static_getchannel": {"16": _wrk(40000.0)},
        "getchannel_ratio_to_nginx": {"16": 0.3},
        "push": [_push(push / 2, 1), _push(push, 16)],
        "uncached": {
            "env": {"PACKYARD_RESPONSE_CACHE_MB": "0"},
            "reads": {name: {"16": _wrk(uncached)} for name in READS},
            "cache_hit_ratio": None,
            "requests_counted": 123,
        },
        "mixed": {
            "connections": 16,
            "pushers": 16,
            "quiet": _wrk(10000.0),
            "during_pushes": _wrk(mixed[0], mixed[1]),
            "ratio": mixed[0] / 10000.0,
            "push": _push(30.0),
        },
        "cost": {
            "getchannel_cached": cost_figures(120_000, 1_000_000, 9.6, None, connections=16),
            "getchannel_uncached": cost_figures(35_000, 1_000_000, 9.8, 2.1, connections=16),
            "push": cost_figures(500, 1000, 8.5, 4.0, pushers=16),
        },
        "memory_mb": {
            "under_load_peak": {
                "resident": rss,
                "rss_sum": rss + 40,
                "pss": rss - 5,
                "processes": 2,
            },
            "revocation_peak": {
                "resident": rss + 6,
                "rss_sum": rss + 46,
                "pss": rss + 1,
                "processes": 2,
            },
            "after_benchmark": {"resident": rss - 1, "rss_sum": rss, "pss": rss, "processes": 2},
        },
        "sql_per_request": {},
        "revocation": {"seconds": 0.5, "descendants": 10000},
    }
    if two is not None:
        data["two_servers"] = {
            "pushers": 16,
            "buckets": 16,
            "one_server": {
                "servers": 1,
                "push": _push(two[0]),
                "activity": _activity(3.0),
                "cost": cost_figures(int(two[0] * 10), 1000, 5.0, 3.0, pushers=16),
            },
            "two_servers": {
                "servers": 2,
                "push": _push(two[1]),
                "activity": _activity(5.0),
                "cost": cost_figures(int(two[1] * 10), 1000, 6.0, 3.5, pushers=16),
            },
            "ratio": two[1] / two[0],
        }
    return data


def _result(size: str, **backends: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "size": size,
        "shape": {"buckets": 10, "versions": 100, "builds": 3, "regions": 5, "family": 10},
        "started_at": "2026-12-05 18:00 UTC",
        "machine": {"packyard_revision": "abc1234"},
        "settings": {"duration_s": 10.0, "warmup_s": 2.0},
        "backends": backends,
    }
    result["targets"] = evaluate(result, None, None)
    return result


def _verdicts(result: dict[str, Any]) -> dict[str, tuple[float | None, bool | None]]:
    return {t["target"]: (t["value"], t["pass"]) for t in result["targets"]}


def _find(verdicts: dict[str, Any], *words: str) -> tuple[float | None, bool | None]:
    found = [v for name, v in verdicts.items() if all(w in name for w in words)]
    assert len(found) == 1, (words, list(verdicts))
    return found[0]


def test_targets_at_size_l() -> None:
    result = _result(
        "L",
        sqlite=_backend(uncached=3100.0, push=50.0, mixed=(6000.0, 12.0), rss=95.0),
        postgresql=_backend(
            uncached=1900.0,
            push=38.0,
            cached_p99=16.0,
            mixed=(4000.0, 25.0),
            two=(30.0, 33.0),
            rss=101.0,
        ),
    )
    v = _verdicts(result)
    assert _find(v, "Uncached GetChannel on sqlite") == (3100.0, True)
    assert _find(v, "Uncached GetChannel on postgresql") == (1900.0, False)
    assert _find(v, "GetChannel on sqlite while", "vs quiet") == (0.6, True)
    assert _find(v, "GetChannel on postgresql while", "vs quiet") == (0.4, False)
    assert _find(v, "on sqlite while pushing, p99") == (12.0, True)
    assert _find(v, "on postgresql while pushing, p99") == (25.0, False)
    assert _find(v, "Push rate on PostgreSQL vs SQLite") == (0.76, False)
    assert _find(v, "two servers on one PostgreSQL") == (1.1, True)
    assert _find(v, "Every cached read on PostgreSQL") == (16.0, False)
    assert _find(v, "Server RSS", "sqlite") == (95.0, True)
    assert _find(v, "Server RSS", "postgresql") == (101.0, False)
    assert _find(v, "vs nginx") == (0.3, True)
    thresholds = {t["target"]: t["threshold"] for t in result["targets"]}
    assert thresholds[next(n for n in thresholds if "vs nginx" in n)] == 0.28


@pytest.mark.parametrize("size", ["XS", "S"])
def test_size_l_targets_are_reported_not_judged_at_other_sizes(size: str) -> None:
    result = _result(size, sqlite=_backend(uncached=100.0), postgresql=_backend(cached_p99=99.0))
    v = _verdicts(result)
    assert _find(v, "Uncached GetChannel on sqlite") == (None, None)
    assert _find(v, "Every cached read on PostgreSQL") == (None, None)
    notes = {t["target"]: t["note"] for t in result["targets"]}
    uncached_note = next(
        n for t, n in notes.items() if t.startswith("Uncached GetChannel on sqlite")
    )
    assert uncached_note == f"judged at size L; 100 req/s at size {size}"
    # the mixed load is judged at every size
    assert _find(v, "GetChannel on sqlite while", "vs quiet") == (0.6, True)


def test_skipped_scenarios_are_not_judged() -> None:
    data = _backend()
    for key in ("uncached", "mixed"):
        data[key] = None
    result = _result("L", postgresql=data)
    v = _verdicts(result)
    assert _find(v, "Uncached GetChannel on postgresql") == (None, None)
    assert _find(v, "GetChannel on postgresql while", "vs quiet") == (None, None)
    assert _find(v, "two servers on one PostgreSQL") == (None, None)
    assert _find(v, "Push rate on PostgreSQL vs SQLite") == (None, None)
    text = markdown(result)
    assert "## Reads while pushing" not in text
    assert "## Two servers on one PostgreSQL" not in text


def _table(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_markdown_sections() -> None:
    result = _result("L", sqlite=_backend(), postgresql=_backend(two=(30.0, 33.0)))
    text = markdown(result)
    cost = _table(text, "## Cost (CPU seconds)")
    assert [row[:2] for row in cost] == [
        ["sqlite", "GetChannel, cached"],
        ["sqlite", "GetChannel, uncached"],
        ["sqlite", "pushes (two-build versions)"],
        ["postgresql", "GetChannel, cached"],
        ["postgresql", "GetChannel, uncached"],
        ["postgresql", "pushes (two-build versions)"],
    ]
    assert cost[0][2:] == [
        "16 connections",
        "120,000",
        "million requests",
        "9.60",
        "80.0",
        "—",
        "—",
    ]
    assert cost[5][2:] == ["16 pushers", "500", "thousand pushes", "8.50", "17.0", "4.00", "8.0"]
    two = _table(text, "## Two servers on one PostgreSQL")
    assert [(row[0], row[1], row[7]) for row in two] == [
        ("1", "30.0", "3.00"),
        ("2", "33.0", "5.00"),
    ]
    mixed = _table(text, "## Reads while pushing")
    assert [(row[0], row[3], row[6], row[9], row[10]) for row in mixed] == [
        ("sqlite", "10,000.0", "6,000.0", "0.600", "30.0"),
        ("postgresql", "10,000.0", "6,000.0", "0.600", "30.0"),
    ]
    uncached = _table(text, "## Uncached reads")
    assert len(uncached) == 2 * len(READS)
    assert uncached[0][:4] == ["sqlite", "GetChannel", "16", "3,500.0"]
    assert uncached[0][-2:] == ["12,000.0", "0.292"]


def test_memory_table_shows_the_revocations_peak_beside_the_load_peak() -> None:
    result = _result("L", sqlite=_backend(rss=90.0), postgresql=_backend(rss=100.0))
    memory = _table(markdown(result), "## Revocation and memory")
    assert [row[4:7] for row in memory] == [
        ["90.0 MB", "96.0 MB", "89.0 MB"],
        ["100.0 MB", "106.0 MB", "99.0 MB"],
    ]


def test_memory_table_without_a_revocation_sample() -> None:
    result = _result("L", sqlite=_backend())
    del result["backends"]["sqlite"]["memory_mb"]["revocation_peak"]
    memory = _table(markdown(result), "## Revocation and memory")
    assert memory[0][5] == "— MB"
