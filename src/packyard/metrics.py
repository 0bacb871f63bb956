"""Prometheus metrics of a server process, served at ``/metrics`` (:mod:`packyard.api.metrics`).

One set of metric objects per process, created on first use. ``packyard serve`` runs its
workers in prometheus_client's multiprocess mode: the supervisor points
``PROMETHEUS_MULTIPROC_DIR`` at a new private directory before forking them
(:func:`multiprocess_dir`), each worker writes its values to memory-mapped files there,
and a scrape answered by any worker adds up every worker's files. Without that variable
(tests, an app embedded elsewhere) the values live in this process only.

Labels never carry tenant data: requests are labelled with the route's operation name
(``PackerService_GetChannel``) or its path template, never the path itself, and with
the status code; nothing is labelled with an organization, project, bucket or user.

Requests are counted on the hot path into plain per-label lists and added to the
Prometheus objects by :meth:`Metrics.flush`, on the event loop once a second and before
each scrape: an observation through prometheus_client costs about 3 µs in multiprocess
mode (a lock and two writes to a memory-mapped file), as much as 3 % of a cached read.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    values,
)
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from sqlalchemy.pool import Pool

    from packyard.api.cache import ResponseCache
    from packyard.store.engine import Store

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_DIR_PREFIX = "packyard-metrics-"

# Seconds; from a cache hit (~0.1 ms) to a slow SBOM upload.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
LAG_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86400.0)
# A client may send any method; anything else is labelled "other" (bounded labels).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def multiprocess_dir() -> Path:
    """A new, empty, private (0700) directory for the workers' metric files, named after
    this process; directories left by supervisors that are gone (killed outright) are
    removed. Exported as ``PROMETHEUS_MULTIPROC_DIR`` for the workers to inherit."""
    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{_DIR_PREFIX}*"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(old.name.removeprefix(_DIR_PREFIX).split("-", 1)[0])
            if old.stat().st_uid == os.getuid() and not _alive(pid):
                shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-"))  # mode 0700
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


@dataclass(slots=True)
class _Pending:
    """Requests of one label set since the last flush: [count per latency bucket], sum."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    seconds: float = 0.0


class Metrics:
    """The process's metric objects (see the module docstring)."""

    def __init__(self) -> None:
        if multiprocess() and values.ValueClass is values.MutexValue:
            # prometheus_client chose its value class when it was imported, which may
            # have been before ``packyard serve`` set the variable in this process tree.
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        # No "_created" series: they double the output and nothing here needs them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if not multiprocess():  # multiprocess: see _WorkerProcesses
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        labels = ("operation", "method", "status")
        self.requests = Counter(
            "packyard_http_requests", "HTTP requests answered.", labels, registry=r
        )
        self.latency = Histogram(
            "packyard_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "packyard_response_cache_lookups",
            "Cacheable reads, by where the response came from: the read cache (hit), the "
            "same request in flight (shared) or the normal path (miss).",
            ("result",),
            registry=r,
        )
        self.cache_bytes = Gauge(
            "packyard_response_cache_bytes",
            "Memory held by cached responses (summed over workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.cache_entries = Gauge(
            "packyard_response_cache_entries",
            "Cached responses (summed over workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool = Gauge(
            "packyard_db_pool_connections",
            "Database connections of the pools (summed over workers): state is size "
            "(configured), checked_out (in use or kept by a thread) or overflow.",
            ("backend", "state"),
            registry=r,
            multiprocess_mode="livesum",
        )
        self.write_wait = Counter(
            "packyard_db_write_wait_seconds",
            "Seconds SQLite writers waited for their turn; its rate is the average "
            "number of writers waiting.",
            registry=r,
        )
        self.write_turns = Counter(
            "packyard_db_write_turns", "SQLite write turns taken.", registry=r
        )
        self.scheduler_lag = Histogram(
            "packyard_scheduled_revocation_lag_seconds",
            "How late each scheduled revocation's channel rollback ran after it fell due.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.scheduler_run = Gauge(
            "packyard_scheduler_last_run_timestamp_seconds",
            "When a revocation scheduler last completed a pass (Unix time).",
            registry=r,
            multiprocess_mode="max",
        )
        self.events = Counter(
            "packyard_registry_events",
            "Changes made in the registry: versions_created, builds_created, "
            "builds_completed, versions_completed, revocations (immediate or scheduled), "
            "restores, scheduled_rollbacks_applied.",
            ("event",),
            registry=r,
        )
        self.run_task_jobs = Counter(
            "packyard_run_task_jobs",
            "HCP Terraform run-task jobs, by event: received, passed, failed (results sent), "
            "retried (an attempt to reach HCP Terraform failed), given_up.",
            ("event",),
            registry=r,
        )
        self.run_task_queue = Gauge(
            "packyard_run_task_queue_jobs",
            "Run-task jobs not finished yet (the database's queue, as a worker last saw it).",
            registry=r,
            multiprocess_mode="max",
        )
        self.run_task_queue_age = Gauge(
            "packyard_run_task_queue_oldest_seconds",
            "Age of the oldest unfinished run-task job (0 when none).",
            registry=r,
            multiprocess_mode="max",
        )
        self.run_task_duration = Histogram(
            "packyard_run_task_duration_seconds",
            "Time from a run-task request's arrival to its result reaching HCP Terraform.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "packyard_webhook_deliveries",
            "Webhook delivery attempts, by outcome: delivered (2xx), retried (failed, tried "
            "again later), dead (refused by the outbound guard, or every attempt failed).",
            ("outcome",),
            registry=r,
        )
        self.webhook_queue = Gauge(
            "packyard_webhook_queue_deliveries",
            "Webhook deliveries not finished yet (as a worker last saw the queue).",
            registry=r,
            multiprocess_mode="max",
        )
        self.webhook_queue_age = Gauge(
            "packyard_webhook_queue_oldest_seconds",
            "Age of the oldest unfinished webhook delivery (0 when none).",
            registry=r,
            multiprocess_mode="max",
        )
        self._pending: dict[tuple[str, str, int], _Pending] = {}
        self._operations: dict[int, tuple[object, str]] = {}
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._sampled: list[Callable[[], None]] = []

    # --- requests: recorded on the hot path, flushed in batches -----------------------

    def record(self, operation: str, method: str, status: int, seconds: float) -> None:
        key = (operation, method, status)
        pending = self._pending.get(key)
        if pending is None:
            if method not in METHODS:  # any other token a client sends: one label for all
                key = (operation, "other", status)
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = _Pending()
        pending.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        pending.seconds += seconds

    def operation(self, route: object) -> str:
        """The ``operation`` label of a matched route (see :func:`operation_of`), remembered."""
        # Routes are not hashable: keyed by id, the route kept so that its id stays its own.
        known = self._operations.get(id(route))
        if known is None or known[0] is not route:
            known = self._operations[id(route)] = (route, operation_of(route))
        return known[1]

    def flush(self) -> None:
        """Add the requests recorded since the last flush to the Prometheus objects and
        sample the gauges. Call it from the thread that records (the event loop)."""
        pending, self._pending = self._pending, {}
        for key, batch in pending.items():
            children = self._children.get(key)
            if children is None:
                op, method, status = key
                children = (
                    self.requests.labels(op, method, str(status)),
                    self.latency.labels(op, method, str(status)),
                )
                self._children[key] = children
            counter, histogram = children
            counter.inc(sum(batch.buckets))
            # prometheus_client has no way to add a batch of observations to a
            # histogram: its bucket counters (non-cumulative) and sum take them directly.
            histogram._sum.inc(batch.seconds)
            for index, count in enumerate(batch.buckets):
                if count:
                    histogram._buckets[index].inc(count)
        for sample in self._sampled:
            sample()

    # --- sampled state ----------------------------------------------------------------

    def watch_cache(self, responses: ResponseCache) -> Callable[[], None]:
        seen = dict.fromkeys(responses.lookups(), 0)

        def sample() -> None:
            for outcome, count in responses.lookups().items():
                if count > seen[outcome]:
                    self.cache.labels(outcome).inc(count - seen[outcome])
                seen[outcome] = count
            self.cache_bytes.set(responses.bytes)
            self.cache_entries.set(len(responses))

        for outcome in seen:
            self.cache.labels(outcome)
        self._sampled.append(sample)
        return sample

    def watch_store(self, store: Store) -> Callable[[], None]:
        backend = "sqlite" if store.is_sqlite else "postgresql"
        pool: Pool = store.engine.pool
        gauges = {s: self.pool.labels(backend, s) for s in ("size", "checked_out", "overflow")}
        seen = [0.0, 0]

        def sample() -> None:
            size = getattr(pool, "size", None)
            if callable(size):
                gauges["size"].set(size())
                gauges["checked_out"].set(getattr(pool, "checkedout")())  # noqa: B009
                gauges["overflow"].set(max(0, getattr(pool, "overflow")()))  # noqa: B009
            waits = store.write_waits()
            if waits is not None:
                waited, turns = waits
                if waited > seen[0]:
                    self.write_wait.inc(waited - seen[0])
                if turns > seen[1]:
                    self.write_turns.inc(turns - seen[1])
                seen[:] = [waited, turns]

        self._sampled.append(sample)
        return sample

    def unwatch(self, *samplers: Callable[[], None]) -> None:
        self._sampled = [s for s in self._sampled if s not in samplers]

    # --- events -----------------------------------------------------------------------

    def event(self, name: str, amount: int = 1) -> None:
        if amount:
            self.events.labels(name).inc(amount)

    def scheduler_pass(self, lags: Iterable[float]) -> None:
        for lag in lags:
            self.scheduler_lag.observe(max(0.0, lag))
        self.scheduler_run.set(time.time())

    def run_task(self, event: str) -> None:
        self.run_task_jobs.labels(event).inc()

    def run_task_lag(self, seconds: float) -> None:
        self.run_task_duration.observe(max(0.0, seconds))

    def run_task_backlog(self, jobs: int, oldest_s: float) -> None:
        self.run_task_queue.set(jobs)
        self.run_task_queue_age.set(max(0.0, oldest_s))

    def webhook_delivery(self, outcome: str) -> None:
        self.webhook_deliveries.labels(outcome).inc()

    def webhook_backlog(self, deliveries: int, oldest_s: float) -> None:
        self.webhook_queue.set(deliveries)
        self.webhook_queue_age.set(max(0.0, oldest_s))

    # --- exposition -------------------------------------------------------------------

    def collectors(self) -> CollectorRegistry:
        """The registry a scrape reads: every worker's values in multiprocess mode, plus
        process metrics (per worker then, labelled ``pid``)."""
        if not multiprocess():
            return self.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(_WorkerProcesses())
        return registry

    def process_exit(self) -> None:
        """Forget this process's live gauges (multiprocess mode): called as a worker stops."""
        if multiprocess():
            with contextlib.suppress(OSError):
                mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class _WorkerProcesses(Collector):
    """``process_*`` metrics of every worker whose metric files are in the directory,
    labelled with its pid (a scrape reaches one worker; the others are read in /proc)."""

    def collect(self) -> Iterator[Metric]:
        directory = os.environ.get(MULTIPROC_ENV, "")
        pids = sorted(
            {
                int(name.rsplit("_", 1)[1].removesuffix(".db"))
                for name in os.listdir(directory)
                if name.endswith(".db") and name.rsplit("_", 1)[-1][:-3].isdigit()
            }
            if directory and os.path.isdir(directory)
            else {os.getpid()}
        )
        families: dict[str, Metric] = {}
        for pid in pids:
            if not os.path.exists(f"/proc/{pid}"):
                continue
            for metric in ProcessCollector(pid=_constant(pid), registry=None).collect():
                family = families.get(metric.name)
                if family is None:
                    family = families[metric.name] = Metric(
                        metric.name, metric.documentation, metric.type
                    )
                for sample in metric.samples:
                    family.add_sample(sample.name, {"pid": str(pid)}, sample.value)
        yield from families.values()


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


@functools.cache
def metrics() -> Metrics:
    """This process's metrics (created on first use)."""
    return Metrics()


def event(name: str, amount: int = 1) -> None:
    """Count ``amount`` registry changes of kind ``name`` (after their transaction committed)."""
    metrics().event(name, amount)


def operation_of(route: object) -> str:
    """The label of a matched route: its operation id, else its path template."""
    if route is None:
        return UNMATCHED
    name = getattr(route, "operation_id", None) or getattr(route, "path", None)
    return name if isinstance(name, str) and name else UNMATCHED
