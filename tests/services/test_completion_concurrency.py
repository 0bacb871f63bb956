"""Concurrent completions: gapless, unique version numbers and one `latest` entry each."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import func, select

from packyard.domain.enums import BuildStatus, Role, TemplateType
from packyard.domain.paging import PageRequest
from packyard.errors import ApiError
from packyard.services.builds import ArtifactInput, BuildChanges
from packyard.services.container import Services
from packyard.store.schema import channel_assignments, channels, versions
from tests.support.factories import TenantFixture

T = TypeVar("T")
WORKERS = 8


def _done(i: int) -> BuildChanges:
    return BuildChanges(
        status=BuildStatus.DONE,
        platform="aws",
        artifacts=[ArtifactInput(f"ami-{i}", "us-east-1")],
        metadata={},
    )


def _run_together(tasks: list[Callable[[], T]]) -> list[T]:
    """Release all tasks at once on a pool of WORKERS threads; collect results or raise."""
    start = threading.Event()

    def wrapped(task: Callable[[], T]) -> T:
        start.wait(timeout=30)
        return task()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(wrapped, t) for t in tasks]
        start.set()
        return [f.result(timeout=120) for f in futures]


def _latest_history(services: Services, bucket_id: str) -> list[tuple[int, str | None]]:
    with services.store.read() as conn:
        rows = conn.execute(
            select(channel_assignments.c.seq, channel_assignments.c.version_id)
            .join(channels, channels.c.id == channel_assignments.c.channel_id)
            .where(channels.c.bucket_id == bucket_id, channels.c.name == "latest")
            .order_by(channel_assignments.c.seq)
        )
        return [(r.seq, r.version_id) for r in rows]


def test_many_builds_of_one_version_finish_together(
    services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.CONTRIBUTOR)
    bucket = services.buckets.create(caller, "golden", None, None)
    services.versions.create(caller, "golden", "fp", TemplateType.HCL2)
    build_ids = [
        services.builds.create(caller, "golden", "fp", f"null.{i}", BuildChanges()).id
        for i in range(16)
    ]

    def finish(i: int, build_id: str) -> Callable[[], BuildStatus]:
        return lambda: services.builds.update(caller, "golden", "fp", build_id, _done(i)).status

    statuses = _run_together([finish(i, b) for i, b in enumerate(build_ids)])
    assert set(statuses) == {BuildStatus.DONE}
    version = services.versions.get(caller, "golden", "fp")
    assert version.name == "v1"
    history = _latest_history(services, bucket.id)
    assert history == [(1, version.id)]
    got = services.buckets.get(caller, "golden")
    assert got.latest_version_id == version.id
    assert got.version_count == 1


def test_many_versions_of_one_bucket_complete_in_parallel(
    services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.ADMIN)
    bucket = services.buckets.create(caller, "golden", None, None)
    count = 24
    plan: list[tuple[str, str]] = []
    for v in range(count):
        fp = f"fp-{v:02d}"
        services.versions.create(caller, "golden", fp, TemplateType.HCL2)
        for c in range(2):
            build = services.builds.create(caller, "golden", fp, f"src.{c}", BuildChanges())
            plan.append((fp, build.id))

    def finish(i: int, fp: str, build_id: str) -> Callable[[], None]:
        def task() -> None:
            services.builds.update(caller, "golden", fp, build_id, _done(i))

        return task

    _run_together([finish(i, fp, b) for i, (fp, b) in enumerate(plan)])

    with services.store.read() as conn:
        rows = conn.execute(
            select(versions.c.id, versions.c.number, versions.c.updated_at).where(
                versions.c.bucket_id == bucket.id
            )
        ).all()
        numbers = sorted(r.number for r in rows)
        assert numbers == list(range(1, count + 1))  # gapless and unique
        by_number = {r.number: r.id for r in rows}
    history = _latest_history(services, bucket.id)
    # exactly one history entry per completion, in completion (= number) order
    assert [seq for seq, _ in history] == list(range(1, count + 1))
    assert [vid for _, vid in history] == [by_number[n] for n in range(1, count + 1)]
    got = services.buckets.get(caller, "golden")
    assert got.latest_version_id == by_number[count]
    assert got.version_count == count


def test_concurrent_completion_across_buckets(services: Services, tenant: TenantFixture) -> None:
    caller = tenant.caller(Role.ADMIN)
    plan: list[tuple[str, str, str]] = []
    for b in range(4):
        services.buckets.create(caller, f"bucket-{b}", None, None)
        for v in range(5):
            fp = f"fp-{v}"
            services.versions.create(caller, f"bucket-{b}", fp, TemplateType.JSON)
            build = services.builds.create(caller, f"bucket-{b}", fp, "null.a", BuildChanges())
            plan.append((f"bucket-{b}", fp, build.id))

    def finish(i: int, bucket: str, fp: str, build_id: str) -> Callable[[], None]:
        def task() -> None:
            services.builds.update(caller, bucket, fp, build_id, _done(i))

        return task

    _run_together([finish(i, *p) for i, p in enumerate(plan)])
    for b in range(4):
        listed = services.versions.list_page(caller, f"bucket-{b}", PageRequest(size=10)).items
        assert sorted(v.number or 0 for v in listed) == [1, 2, 3, 4, 5]
        bucket = services.buckets.get(caller, f"bucket-{b}")
        assert len(_latest_history(services, bucket.id)) == 5


def test_concurrent_create_build_same_component_gives_one_build(
    services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.CONTRIBUTOR)
    services.buckets.create(caller, "golden", None, None)
    services.versions.create(caller, "golden", "fp", TemplateType.HCL2)

    def create() -> int:
        try:
            services.builds.create(caller, "golden", "fp", "null.a", BuildChanges())
        except ApiError as exc:
            return int(exc.code)
        return 0

    codes = _run_together([create for _ in range(WORKERS)])
    assert sorted(codes) == [0] + [6] * (WORKERS - 1)
    with services.store.read() as conn:
        total = conn.execute(select(func.count()).select_from(versions)).scalar_one()
    assert total == 1
