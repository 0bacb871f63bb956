"""The versions holding a copy of a revocation, as a revocation, a restore and the scheduler
read them: marked without being loaded (``inherited_copy_marks``), or loaded with their
builds as they are used (``stream_inherited_copies``, ``stream_with_builds``), each in one
statement, on both backends."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from packyard.domain.enums import Role
from packyard.domain.models import Version
from packyard.services.container import Services
from packyard.store.revocation import one_id
from packyard.store.versions import CopyMark, VersionRepo
from tests.support.factories import TenantFixture
from tests.support.querycount import count_statements
from tests.support.revocation import Pushed, new_buckets, push_version, request


@dataclass
class Revoked:
    root: Pushed
    copies: list[Pushed]  # in bucket name, then number order


@pytest.fixture
def revoked(services: Services, tenant: TenantFixture) -> Revoked:
    """A root version whose scheduled revocation three descendants in two buckets copy."""
    caller = tenant.caller(Role.ADMIN)
    base, first, second = new_buckets(services, caller, "base", "c1", "c2")
    root = push_version(services, caller, base)
    copies = [
        push_version(services, caller, bucket, parent_id=root.id)
        for bucket in (second, first, first)
    ]
    services.revocation.revoke(caller, base, root.fingerprint, request(revoke_in="1h"))
    return Revoked(root, [copies[1], copies[2], copies[0]])


def _loaded(services: Services, ids: list[str]) -> dict[str, Version]:
    with services.store.read() as conn:
        return VersionRepo(conn).get_with_builds(ids)


def test_the_marks_name_each_copy_its_origin_and_time(services: Services, revoked: Revoked) -> None:
    with services.store.read() as conn, count_statements(services.store.engine) as log:
        marks = VersionRepo(conn).inherited_copy_marks(one_id(revoked.root.id))
    [root] = _loaded(services, [revoked.root.id]).values()
    assert len(log.statements) == 1
    assert marks == {c.id: CopyMark(revoked.root.id, root.revoke_at) for c in revoked.copies}


def test_streamed_copies_are_read_as_they_are_used(services: Services, revoked: Revoked) -> None:
    ids = [c.id for c in revoked.copies]
    expected = _loaded(services, ids)
    with services.store.read() as conn, count_statements(services.store.engine) as log:
        repo = VersionRepo(conn)
        copies = repo.stream_inherited_copies(one_id(revoked.root.id))
        by_id = repo.stream_with_builds(reversed(ids))
        assert log.statements == []  # nothing is read before it is used
        streamed, loaded = list(copies), list(by_id)
    assert len(log.statements) == 2
    assert [(v.id, origin) for v, origin in streamed] == [(i, revoked.root.id) for i in ids]
    assert [v.id for v in loaded] == ids  # by bucket name and number, whatever was asked
    for version in (*(v for v, _ in streamed), *loaded):
        assert version.builds and version.builds[0].artifacts
        assert version.builds == expected[version.id].builds
        assert version.revoke_at == expected[version.id].revoke_at
