"""The channel read models the console uses (both backends): the bucket overview with each
channel's last change and the versions it may be given, a channel's history as moves, and
what serves a version."""

from __future__ import annotations

import pytest

from packyard.domain.enums import Role, TemplateType
from packyard.domain.models import MANAGED_AUTHOR
from packyard.domain.paging import PageRequest
from packyard.errors import ApiError, Code
from packyard.services.container import Services
from tests.support.factories import TenantFixture, unique
from tests.support.querycount import count_statements
from tests.support.revocation import push_version, request


def _assign(services: Services, tenant: TenantFixture, bucket: str, name: str, fp: str) -> None:
    services.channels.update(
        tenant.caller(),
        bucket,
        name,
        fingerprint=fp,
        restricted=None,
        update_mask="versionFingerprint",
    )


def test_overview_lists_channels_last_changes_and_assignable_versions(
    services: Services, tenant: TenantFixture
) -> None:
    admin = tenant.caller(Role.ADMIN)
    bucket = unique("b")
    services.buckets.create(admin, bucket, None, None)
    v1, v2, v3 = (push_version(services, admin, bucket) for _ in range(3))
    services.versions.create(admin, bucket, unique("fp"), TemplateType.HCL2)
    services.channels.create(admin, bucket, "prod", v1.fingerprint, False)
    services.channels.create(admin, bucket, "secret", None, True)
    services.revocation.update(admin, bucket, v2.fingerprint, request(revoke_in="0s"))

    seen = services.channels.overview(admin, bucket)
    names = [s.channel.name for s in seen.channels]
    assert names == ["latest", "prod", "secret"]
    last = {s.channel.name: s.last_change for s in seen.channels}
    assert last["prod"] is not None and last["prod"].author_id == admin.name
    assert last["latest"] is not None and last["latest"].author_id == MANAGED_AUTHOR
    assert last["secret"] is None
    # complete and not revoked, newest first; the incomplete and the revoked are never offered
    assert [v.id for v in seen.assignable] == [v3.id, v1.id]

    limited = services.channels.overview(admin, bucket, limit=1, include=v1.fingerprint)
    assert [v.id for v in limited.assignable] == [v3.id, v1.id]
    refused = services.channels.overview(admin, bucket, limit=1, include=v2.fingerprint)
    assert [v.id for v in refused.assignable] == [v3.id]

    viewer = services.channels.overview(tenant.caller(Role.VIEWER), bucket)
    assert [s.channel.name for s in viewer.channels] == ["prod"]  # latest is restricted
    assert viewer.assignable == []


def test_detail_shows_moves_with_rollbacks_and_pages(
    services: Services, tenant: TenantFixture
) -> None:
    admin = tenant.caller(Role.ADMIN)
    bucket = unique("b")
    services.buckets.create(admin, bucket, None, None)
    v1, v2, v3 = (push_version(services, admin, bucket) for _ in range(3))
    services.channels.create(admin, bucket, "prod", v1.fingerprint, False)
    _assign(services, tenant, bucket, "prod", v2.fingerprint)
    _assign(services, tenant, bucket, "prod", v3.fingerprint)
    services.revocation.update(admin, bucket, v3.fingerprint, request(revoke_in="0s"))
    services.channels.update(
        admin, bucket, "prod", fingerprint=None, restricted=None, update_mask="versionFingerprint"
    )

    detail = services.channels.detail(admin, bucket, "prod", PageRequest(size=10))
    assert detail.channel.version is None
    moves = [
        (i.version.id if i.version else None, i.previous.id if i.previous else None, i.first)
        for i in detail.timeline.items
    ]
    assert moves == [
        (None, v2.id, False),  # unassigned by hand
        (v2.id, v3.id, False),  # rolled back when v3 was revoked
        (v3.id, v2.id, False),
        (v2.id, v1.id, False),
        (v1.id, None, True),
    ]
    assert [i.rollback for i in detail.timeline.items] == [False, True, False, False, False]
    assert detail.timeline.total == 5
    assert [v.id for v in detail.assignable] == [v2.id, v1.id]

    first = services.channels.detail(admin, bucket, "prod", PageRequest(size=2))
    assert len(first.timeline.items) == 2 and first.timeline.next_token
    second = services.channels.detail(
        admin, bucket, "prod", PageRequest(size=2, next_token=first.timeline.next_token)
    )
    assert second.timeline.items[0].previous is not None  # the move's origin, across pages
    assert second.timeline.items[0].previous.id == v2.id

    latest = services.channels.detail(admin, bucket, "latest", PageRequest())
    assert latest.assignable == []  # managed: nobody assigns it
    assert latest.timeline.items[0].rollback  # back to v2 when v3 was revoked


def test_detail_of_a_restricted_channel_is_403_for_a_viewer(
    services: Services, tenant: TenantFixture
) -> None:
    admin = tenant.caller(Role.ADMIN)
    bucket = unique("b")
    services.buckets.create(admin, bucket, None, None)
    services.channels.create(admin, bucket, "secret", None, True)
    with pytest.raises(ApiError) as caught:
        services.channels.detail(tenant.caller(Role.VIEWER), bucket, "secret", PageRequest())
    assert caught.value.code is Code.PERMISSION_DENIED


def test_serving_version_names_the_channels_a_viewer_may_see(
    services: Services, tenant: TenantFixture
) -> None:
    admin = tenant.caller(Role.ADMIN)
    bucket = unique("b")
    services.buckets.create(admin, bucket, None, None)
    v1 = push_version(services, admin, bucket)
    services.channels.create(admin, bucket, "prod", v1.fingerprint, False)
    services.channels.create(admin, bucket, "secret", v1.fingerprint, True)
    use = services.channels.serving_version(admin, bucket, v1.fingerprint)
    assert use.version.builds and sorted(c.name for c in use.channels) == [
        "latest",
        "prod",
        "secret",
    ]
    seen = services.channels.serving_version(tenant.caller(Role.VIEWER), bucket, v1.fingerprint)
    assert [c.name for c in seen.channels] == ["prod"]


def _read_statements(services: Services, tenant: TenantFixture, channels: int) -> tuple[int, int]:
    admin = tenant.caller(Role.ADMIN)
    bucket = unique("b")
    services.buckets.create(admin, bucket, None, None)
    pushed = [push_version(services, admin, bucket) for _ in range(3)]
    for n in range(channels):
        services.channels.create(admin, bucket, f"c{n}", pushed[n % 3].fingerprint, False)
        for v in pushed:
            _assign(services, tenant, bucket, f"c{n}", v.fingerprint)
    with count_statements(services.store.engine) as overview:
        services.channels.overview(admin, bucket)
    with count_statements(services.store.engine) as detail:
        services.channels.detail(admin, bucket, "c0", PageRequest(size=25))
    return overview.count, detail.count


def test_the_number_of_queries_does_not_grow_with_channels_or_history(
    services: Services, tenant: TenantFixture
) -> None:
    assert _read_statements(services, tenant, 2) == _read_statements(services, tenant, 12)
