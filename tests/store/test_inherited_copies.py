"""The versions holding a copy of a revocation, read all at once
(``VersionRepo.inherited_copies``) or as they are used (``stream_inherited_copies``, what a
revocation records its events from): the same versions, builds and origins, in one
statement, on both backends."""

from __future__ import annotations

from packyard.domain.enums import Role
from packyard.services.container import Services
from packyard.store.revocation import one_id
from packyard.store.versions import BuildRepo, VersionRepo
from tests.support.factories import TenantFixture, unique
from tests.support.querycount import count_statements
from tests.support.revocation import push_version, request


def test_streamed_copies_are_the_copies_with_their_builds(
    services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.ADMIN)
    base, child = unique("base"), unique("child")
    for name in (base, child):
        services.buckets.create(caller, name, None, None)
    root = push_version(services, caller, base)
    first = push_version(services, caller, child, parent_id=root.id)
    second = push_version(services, caller, child, parent_id=root.id)
    services.revocation.revoke(caller, base, root.fingerprint, request(revoke_in="1h"))
    with services.store.read() as conn:
        repo = VersionRepo(conn)
        listed = repo.inherited_copies(one_id(root.id))
        builds = BuildRepo(conn).for_versions([v.id for v, _ in listed])
        with count_statements(services.store.engine) as log:
            stream = repo.stream_inherited_copies(one_id(root.id))
            assert log.statements == []  # nothing is read before it is used
            streamed = list(stream)
    assert len(log.statements) == 1
    assert [v.id for v, _ in streamed] == [first.id, second.id]
    assert [(v.id, origin) for v, origin in streamed] == [(v.id, o) for v, o in listed]
    for (version, _), (plain, _) in zip(streamed, listed, strict=True):
        assert version.builds == builds[version.id]
        assert version.builds and version.builds[0].artifacts
        plain.builds = builds[plain.id]
        assert version == plain
