"""SQL statements per request, counted in-process on the store the HTTP server uses.

The harness and the CI query-budget test both use this: they serve the real
ASGI app (uvicorn on a loopback port, in a thread) over a ``Store`` whose
statement counter is on (:meth:`Store.enable_statement_counter`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass

import httpx

from bench.push import project_prefix, push_version
from bench.seed import Targets
from packyard.services import audit, keys, runtask_jobs, scheduler, webhook_deliveries
from packyard.store.engine import StatementCounter, Store

# Server threads that touch the database on their own schedule, not per request.
BACKGROUND_THREADS = (
    scheduler.THREAD_NAME,
    runtask_jobs.THREAD_NAME,
    audit.THREAD_NAME,
    webhook_deliveries.THREAD_NAME,
    keys.THREAD_NAME,
)


def counter_for(store: Store) -> StatementCounter:
    """The store's statement counter (switched on now), blind to background jobs."""
    return store.enable_statement_counter(ignore_threads=BACKGROUND_THREADS)


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    method: str
    path: str  # absolute, with query string
    body: str = ""  # JSON text for POST

    @property
    def json(self) -> object:
        return json.loads(self.body) if self.body else None


def read_endpoints(targets: Targets) -> list[Endpoint]:
    """The consumer read path the benchmark measures, addressed at the seeded targets."""
    prefix = project_prefix(targets.organization_id, targets.project_id)
    bucket = f"{prefix}/buckets/{targets.bucket}"
    search = {"external_identifier": targets.external_identifier, "region": targets.region}
    return [
        Endpoint("GetChannel", "GET", f"{bucket}/channels/{targets.channel}"),
        Endpoint("GetVersion", "GET", f"{bucket}/versions/{targets.version_fingerprint}"),
        Endpoint("GetBucket", "GET", bucket),
        Endpoint(
            "ListBuckets",
            "GET",
            f"{prefix}/buckets?pagination.page_size={targets.list_page_size}",
        ),
        Endpoint(
            "SearchExternalArtifact",
            "POST",
            f"{prefix}/_search/external_artifact",
            json.dumps(search, separators=(",", ":")),
        ),
    ]


@dataclass(frozen=True, slots=True)
class Count:
    """Statements and transactions per request (averaged), and the HTTP status seen."""

    status: int
    code: int | None
    statements: float
    transactions: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def count_request(
    client: httpx.Client, counter: StatementCounter, endpoint: Endpoint, *, repeat: int = 3
) -> Count:
    """Warm once, then average ``repeat`` identical requests."""
    response = client.request(endpoint.method, endpoint.path, json=endpoint.json)
    before = counter.snapshot()
    for _ in range(repeat):
        response = client.request(endpoint.method, endpoint.path, json=endpoint.json)
    after = counter.snapshot()
    code = None
    if response.status_code != 200 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        raw = response.json().get("code")
        code = raw if isinstance(raw, int) else None
    return Count(
        status=response.status_code,
        code=code,
        statements=(after[0] - before[0]) / repeat,
        transactions=(after[1] - before[1]) / repeat,
    )


@dataclass(slots=True)
class PushCount:
    complete: bool
    statements: int
    transactions: int
    calls: int
    per_call: list[tuple[str, int]]  # (operation, statements) in call order
    failure: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "complete": self.complete,
            "statements": self.statements,
            "transactions": self.transactions,
            "calls": self.calls,
            "per_call": [{"op": op, "statements": n} for op, n in self.per_call],
            "failure": self.failure,
        }


def count_push(
    base_url: str,
    token: str,
    counter: StatementCounter,
    targets: Targets,
    bucket: str,
    fingerprint: str,
) -> PushCount:
    """Statements for one whole two-build push, run call after call (deterministic order)."""
    prefix = project_prefix(targets.organization_id, targets.project_id)
    per_call: list[tuple[str, int]] = []
    mark = [counter.snapshot()[0]]

    def observe(op: str) -> None:
        now = counter.snapshot()[0]
        per_call.append((op, now - mark[0]))
        mark[0] = now

    async def run() -> PushCount:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
            before = counter.snapshot()
            mark[0] = before[0]
            outcome = await push_version(
                client,
                prefix,
                bucket,
                fingerprint,
                channel=targets.push_channel,
                concurrent=False,
                observer=observe,
            )
            after = counter.snapshot()
        return PushCount(
            complete=outcome.complete,
            statements=after[0] - before[0],
            transactions=after[1] - before[1],
            calls=outcome.calls,
            per_call=per_call,
            failure=outcome.failure,
        )

    return asyncio.run(run())
