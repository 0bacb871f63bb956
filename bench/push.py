"""The write path: Packer's call sequence for a two-build version, with N concurrent pushers."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

import httpx

from bench.lean_http import LeanClient

_T = TypeVar("_T")
_R = TypeVar("_R")

COMPONENTS = ("amazon-ebs.ubuntu", "googlecompute.ubuntu")
_METADATA = {"packer": {"version": "1.16.0"}, "cicd": None, "vcs": None}


class HttpClient(Protocol):
    """What a pusher needs from its client: httpx.AsyncClient or the lean client."""

    async def request(self, method: str, url: str, *, json: Any = None) -> Any: ...


def project_prefix(organization_id: str, project_id: str) -> str:
    return f"/packer/2023-01-01/organizations/{organization_id}/projects/{project_id}"


@dataclass(slots=True)
class PushOutcome:
    complete: bool
    calls: int = 0
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)  # "METHOD op -> status[/code]"
    failure: str = ""


class _Push:
    def __init__(
        self,
        client: HttpClient,
        prefix: str,
        bucket: str,
        observer: Callable[[str], None] | None,
    ) -> None:
        self.client = client
        self.observer = observer
        self.bucket = prefix + f"/buckets/{bucket}"
        self.prefix = prefix
        self.name = bucket
        self.outcome = PushOutcome(complete=False)

    async def call(
        self, op: str, method: str, path: str, body: Any = None, *, ok: tuple[str, ...] = ("200",)
    ) -> dict[str, Any]:
        response = await self.client.request(method, path, json=body)
        self.outcome.calls += 1
        if self.observer is not None:
            self.observer(op)
        key = str(response.status_code)
        data: dict[str, Any] = {}
        if response.headers.get("content-type", "").startswith("application/json"):
            data = response.json() if response.content else {}
            if response.status_code != 200 and isinstance(data.get("code"), int):
                key += f"/{data['code']}"
        self.outcome.statuses[f"{op} -> {key}"] += 1
        if key not in ok:
            raise _Failed(f"{op}: HTTP {key} {response.text[:200]}")
        return data


class _Failed(Exception):
    pass


async def push_version(
    client: HttpClient,
    prefix: str,
    bucket: str,
    fingerprint: str,
    *,
    channel: str = "dev",
    components: tuple[str, ...] = COMPONENTS,
    regions: tuple[str, ...] = ("us-east-1",),
    concurrent: bool = True,
    observer: Callable[[str], None] | None = None,
) -> PushOutcome:
    """Push one version as ``packer build`` does; ``concurrent`` interleaves the builds.

    GetBucket, GetVersion (code 10), CreateVersion, ListBuilds, CreateBuild per
    component, GetEnforcedBlocksByBucket (codes 5 and 12 tolerated, as Packer
    does), then per build RUNNING, DONE and UpdateChannel. The UpdateChannel
    after the first DONE meets an incomplete version and fails with code 9;
    Packer only prints that, so it is tolerated too. ``observer`` is told the
    operation name after each answer.
    """
    p = _Push(client, prefix, bucket, observer)
    started = time.perf_counter()
    versions = p.bucket + "/versions"
    builds = versions + f"/{fingerprint}/builds"

    async def create(component: str) -> str:
        body = {
            "artifacts": None,
            "component_type": component,
            "packer_run_uuid": f"run-{fingerprint}",
            "status": "BUILD_UNSET",
        }
        data = await p.call("CreateBuild", "POST", builds, body)
        return str(data["build"]["id"])

    async def chain(index: int, build_id: str) -> None:
        path = f"{builds}/{build_id}"
        run = f"run-{fingerprint}"
        await p.call(
            "UpdateBuild(RUNNING)",
            "PATCH",
            path,
            {"artifacts": None, "packer_run_uuid": run, "status": "BUILD_RUNNING"},
        )
        await p.call(
            "UpdateBuild(DONE)",
            "PATCH",
            path,
            {
                "artifacts": [
                    {"external_identifier": f"img-{fingerprint}-{index}-{r}", "region": region}
                    for r, region in enumerate(regions)
                ],
                "labels": {"os": "ubuntu"},
                "metadata": _METADATA,
                "packer_run_uuid": run,
                "platform": components[index].split(".")[0],
                "status": "BUILD_DONE",
            },
        )
        await p.call(
            "UpdateChannel",
            "PATCH",
            p.bucket + f"/channels/{channel}",
            {"update_mask": "versionFingerprint", "version_fingerprint": fingerprint},
            ok=("200", "400/9"),
        )

    try:
        await p.call("GetBucket", "GET", p.bucket)
        await p.call("GetVersion", "GET", f"{versions}/{fingerprint}", ok=("409/10",))
        await p.call(
            "CreateVersion", "POST", versions, {"fingerprint": fingerprint, "template_type": "HCL2"}
        )
        await p.call("ListBuilds", "GET", builds)
        ids = await _each(create, list(components), concurrent)
        await p.call(
            "GetEnforcedBlocks",
            "GET",
            prefix + f"/enforced_blocks/bucket/{bucket}",
            ok=("200", "404/5", "501/12"),
        )
        await _each(lambda pair: chain(*pair), list(enumerate(ids)), concurrent)
        p.outcome.complete = True
    except (_Failed, httpx.HTTPError, OSError, asyncio.IncompleteReadError) as exc:
        p.outcome.failure = str(exc)
    p.outcome.seconds = time.perf_counter() - started
    return p.outcome


async def _each(fn: Callable[[_T], Awaitable[_R]], items: list[_T], concurrent: bool) -> list[_R]:
    if concurrent:
        return list(await asyncio.gather(*(fn(x) for x in items)))
    return [await fn(x) for x in items]


@dataclass(slots=True)
class PushResult:
    pushers: int
    seconds: float
    versions: int
    versions_per_s: float
    failures: int
    calls_per_s: float
    version_p50_ms: float
    version_p99_ms: float
    statuses: dict[str, int]
    first_failure: str = ""
    loadgen_cpu: float = 0.0  # CPU seconds the pushers' process used per wall second

    def to_json(self) -> dict[str, object]:
        return asdict(self)


async def run_pushers(
    base_url: str,
    token: str,
    prefix: str,
    buckets: list[str],
    *,
    pushers: int,
    seconds: float,
    channel: str = "dev",
) -> PushResult:
    """``pushers`` concurrent Packer runs, each on its own bucket, for ``seconds``."""
    return await run_pushers_on(
        [(base_url, token)], prefix, buckets, pushers=pushers, seconds=seconds, channel=channel
    )


async def run_pushers_on(
    servers: list[tuple[str, str]],
    prefix: str,
    buckets: list[str],
    *,
    pushers: int,
    seconds: float,
    channel: str = "dev",
) -> PushResult:
    """``pushers`` concurrent Packer runs, each on its own bucket (``buckets[i % len]``), for
    ``seconds``, spread over ``servers`` (base URL, token): pusher ``i`` talks to server
    ``i % len(servers)``."""
    run = secrets.token_hex(3)
    counter = itertools.count()
    outcomes: list[PushOutcome] = []
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                LeanClient(base_url, {"Authorization": f"Bearer {token}"})
            )
            for base_url, token in servers
        ]
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        cpu_started = time.process_time()

        async def pusher(i: int) -> None:
            bucket = buckets[i % len(buckets)]
            client = clients[i % len(clients)]
            while time.perf_counter() < deadline:
                fp = f"push-{run}-{i}-{next(counter)}"
                outcomes.append(await push_version(client, prefix, bucket, fp, channel=channel))

        await asyncio.gather(*(pusher(i) for i in range(pushers)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    done = [o for o in outcomes if o.complete]
    failed = [o for o in outcomes if not o.complete]
    latencies = sorted(o.seconds * 1000 for o in done)
    statuses: Counter[str] = Counter()
    for o in outcomes:
        statuses.update(o.statuses)
    return PushResult(
        pushers=pushers,
        seconds=round(elapsed, 3),
        versions=len(done),
        versions_per_s=round(len(done) / elapsed, 2),
        failures=len(failed),
        calls_per_s=round(sum(o.calls for o in outcomes) / elapsed, 1),
        version_p50_ms=round(statistics.median(latencies), 1) if latencies else 0.0,
        version_p99_ms=round(_percentile(latencies, 99), 1) if latencies else 0.0,
        statuses=dict(sorted(statuses.items())),
        first_failure=failed[0].failure if failed else "",
        loadgen_cpu=round(cpu / elapsed, 2),
    )


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(pct / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]
