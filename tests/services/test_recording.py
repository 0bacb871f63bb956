"""What a change records: a revocation's events are produced as its copies are read."""

from __future__ import annotations

from collections.abc import Iterator

from packyard.domain.enums import Role
from packyard.domain.models import Version
from packyard.domain.rules import utcnow
from packyard.services import recording
from packyard.services.container import Services
from tests.support.factories import TenantFixture, unique
from tests.support.revocation import load, push_version


def test_revocation_events_take_one_copy_per_event(
    services: Services, tenant: TenantFixture
) -> None:
    """A revocation reaching 10,000 descendants must not hold them all: each event reads
    the next copy only when it is asked for."""
    caller = tenant.caller(Role.ADMIN)
    bucket = unique("b")
    services.buckets.create(caller, bucket, None, None)
    origin, *copies = (
        load(services, caller, push_version(services, caller, bucket)) for _ in range(3)
    )
    read: list[str] = []

    def held() -> Iterator[tuple[Version, str]]:
        for version in copies:
            read.append(version.id)
            yield version, origin.id

    with services.store.read() as conn:
        events = recording.revocation_events(conn, origin, held(), utcnow(), skip_descendants=False)
        taken = []
        for expected in ([], [copies[0].id], [copies[0].id, copies[1].id]):
            taken.append(next(events))
            assert read == expected
        assert next(events, None) is None
    assert [e.payload["version"]["id"] for e in taken] == [v.id for v in (origin, *copies)]
