"""RevocationService.preview: what a revocation would change, by the SQL that changes it
(both backends). Every test previews, revokes, and compares the two."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from packyard.domain.enums import Role
from packyard.domain.models import Caller
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code
from packyard.services.container import Services
from packyard.services.revocation import RevocationPreview, RevocationRequest
from packyard.store.forest import seed_forest
from packyard.store.schema import buckets as buckets_table
from packyard.store.schema import channels, versions
from tests.support.factories import TenantFixture
from tests.support.querycount import count_statements
from tests.support.revocation import Pushed, new_buckets, push_version, request


@dataclass
class Family:
    """``base``: b1 → b2 (channel prod: b1 then b2, latest b2); ``child``: c0, then c1
    built on b2 through prod (channel stable: c1; latest c1); ``grand``: g1 built on c1
    (latest g1)."""

    caller: Caller
    base: str
    child: str
    grand: str
    b1: Pushed
    b2: Pushed
    c0: Pushed
    c1: Pushed
    g1: Pushed


def family(services: Services, tenant: TenantFixture) -> Family:
    caller = tenant.caller(Role.ADMIN)
    base, child, grand = new_buckets(services, caller, "base", "child", "grand")
    b1 = push_version(services, caller, base)
    b2 = push_version(services, caller, base)
    services.channels.create(caller, base, "prod", b1.fingerprint, False)
    services.channels.update(
        caller,
        base,
        "prod",
        fingerprint=b2.fingerprint,
        restricted=None,
        update_mask="versionFingerprint",
    )
    prod = services.channels.get(caller, base, "prod")
    c0 = push_version(services, caller, child)
    c1 = push_version(services, caller, child, parent_id=b2.id, parent_channel_id=prod.id)
    services.channels.create(caller, child, "stable", c1.fingerprint, True)
    g1 = push_version(services, caller, grand, parent_id=c1.id)
    return Family(caller, base, child, grand, b1, b2, c0, c1, g1)


def served(services: Services, *buckets: str) -> dict[tuple[str, str], str | None]:
    """``(bucket, channel) -> version id`` for every channel of ``buckets``."""
    with services.store.read() as conn:
        rows = conn.execute(
            select(buckets_table.c.name, channels.c.name, channels.c.version_id)
            .join(buckets_table, buckets_table.c.id == channels.c.bucket_id)
            .where(buckets_table.c.name.in_(buckets))
        )
        return {(r[0], r[1]): r[2] for r in rows}


def revoked_ids(services: Services, ids: list[str]) -> set[str]:
    with services.store.read() as conn:
        rows = conn.execute(
            select(versions.c.id).where(versions.c.id.in_(ids), versions.c.revoke_at.is_not(None))
        )
        return {r.id for r in rows}


def predicted(preview: RevocationPreview) -> dict[tuple[str, str], str | None]:
    return {
        (c.bucket_name, c.channel_name): c.to_version.id if c.to_version else None
        for c in preview.channels
    }


def test_an_immediate_revocation_does_what_its_preview_says(
    services: Services, tenant: TenantFixture
) -> None:
    f = family(services, tenant)
    wanted = request(revoke_in="0s", message="CVE-2026-0002")
    everything = [f.b1.id, f.b2.id, f.c0.id, f.c1.id, f.g1.id]
    before = served(services, f.base, f.child, f.grand)

    preview = services.revocation.preview(f.caller, f.base, f.b2.fingerprint, wanted)

    assert served(services, f.base, f.child, f.grand) == before  # nothing changed
    assert revoked_ids(services, everything) == set()
    assert preview.immediate and preview.cascade and preview.rollback
    assert preview.version.id == f.b2.id and preview.message == "CVE-2026-0002"
    assert {d.version.id for d in preview.descendants if d.revoked} == {f.c1.id, f.g1.id}
    assert (preview.descendants_revoked, preview.descendants_untouched) == (2, 0)
    assert {(d.version.bucket_name, d.version.name) for d in preview.descendants} == {
        (f.child, "v2"),
        (f.grand, "v1"),
    }
    assert predicted(preview) == {
        (f.base, "latest"): f.b1.id,
        (f.base, "prod"): f.b1.id,
        (f.child, "latest"): f.c0.id,
        (f.child, "stable"): None,
        (f.grand, "latest"): None,
    }
    prod = next(c for c in preview.channels if c.channel_name == "prod")
    assert prod.from_version is not None and prod.from_version.id == f.b2.id
    assert next(c for c in preview.channels if c.channel_name == "stable").restricted
    assert preview.channels[0].bucket_name == f.base  # the version's own bucket first

    services.revocation.update(f.caller, f.base, f.b2.fingerprint, wanted)

    assert revoked_ids(services, everything) == {f.b2.id, f.c1.id, f.g1.id}
    after = served(services, f.base, f.child, f.grand)
    assert after == {**before, **predicted(preview)}


def test_choices_and_what_descendants_keep(services: Services, tenant: TenantFixture) -> None:
    f = family(services, tenant)
    # g1 has a revocation of its own: it keeps it.
    services.revocation.update(f.caller, f.grand, f.g1.fingerprint, request(revoke_in="30d"))

    alone = services.revocation.preview(
        f.caller,
        f.base,
        f.b2.fingerprint,
        request(revoke_in="0s", skip_descendants=True, disable_rollback=True),
    )
    assert not alone.cascade and not alone.rollback
    assert alone.channels == []
    assert [d.revoked for d in alone.descendants] == [False, False]
    assert (alone.descendants_revoked, alone.descendants_untouched) == (0, 2)

    full = services.revocation.preview(f.caller, f.base, f.b2.fingerprint, request(revoke_in="0s"))
    kept = {d.version.id: d.revoked for d in full.descendants}
    assert kept == {f.c1.id: True, f.g1.id: False}
    assert full.descendants[0].version.id == f.c1.id  # those revoked come first
    assert (full.descendants_revoked, full.descendants_untouched) == (1, 1)
    # g1 is not taken by this revocation: grand's latest stays (it serves a version whose
    # own revocation is still to come).
    assert (f.grand, "latest") not in predicted(full)

    services.revocation.update(f.caller, f.base, f.b2.fingerprint, request(revoke_in="0s"))
    g1 = services.versions.get(f.caller, f.grand, f.g1.fingerprint)
    assert g1.revocation_type is not None and g1.revocation_type.value == "MANUAL"


def test_a_scheduled_revocation_and_its_rollback_when_due(
    services: Services, tenant: TenantFixture
) -> None:
    f = family(services, tenant)
    preview = services.revocation.preview(
        f.caller, f.base, f.b2.fingerprint, request(revoke_in="2h")
    )
    assert not preview.immediate
    assert timedelta(hours=2) - timedelta(minutes=1) < preview.revoke_at - utcnow()
    assert {d.version.id for d in preview.descendants if d.revoked} == {f.c1.id, f.g1.id}

    revoked = services.revocation.update(
        f.caller, f.base, f.b2.fingerprint, request(revoke_in="2h")
    )
    assert revoked.revoke_at is not None
    before = served(services, f.base, f.child, f.grand)
    assert before[(f.base, "prod")] == f.b2.id  # nothing moves before it takes effect
    services.scheduler.apply_due(revoked.revoke_at)
    assert served(services, f.base, f.child, f.grand) == {**before, **predicted(preview)}


def test_replacing_a_scheduled_revocation(services: Services, tenant: TenantFixture) -> None:
    f = family(services, tenant)
    services.revocation.update(f.caller, f.base, f.b2.fingerprint, request(revoke_in="30d"))
    preview = services.revocation.preview(
        f.caller, f.base, f.b2.fingerprint, request(revoke_in="1h")
    )
    assert preview.replaces
    # The copies of the revocation it replaces are replaced too.
    assert {d.version.id for d in preview.descendants if d.revoked} == {f.c1.id, f.g1.id}
    services.revocation.update(f.caller, f.base, f.b2.fingerprint, request(revoke_in="1h"))
    c1 = services.versions.get(f.caller, f.child, f.c1.fingerprint)
    assert c1.revoke_at is not None and c1.revoke_at - utcnow() < timedelta(hours=1)


@pytest.mark.parametrize(
    ("role", "wanted", "code", "field"),
    [
        (Role.VIEWER, request(revoke_in="0s"), Code.PERMISSION_DENIED, None),
        (Role.CONTRIBUTOR, request(revoke_in="soon"), Code.INVALID_ARGUMENT, "revoke_in"),
        (Role.CONTRIBUTOR, request(), Code.INVALID_ARGUMENT, "revoke_at"),
        (
            Role.CONTRIBUTOR,
            request(revoke_in="1h", message="x" * 5000),
            Code.INVALID_ARGUMENT,
            "revocation_message",
        ),
    ],
)
def test_the_preview_refuses_what_the_revocation_refuses(
    services: Services,
    tenant: TenantFixture,
    role: Role,
    wanted: RevocationRequest,
    code: Code,
    field: str | None,
) -> None:
    f = family(services, tenant)
    caller = tenant.caller(role)
    for attempt in (services.revocation.preview, services.revocation.update):
        with pytest.raises(ApiError) as caught:
            attempt(caller, f.base, f.b2.fingerprint, wanted)
        assert caught.value.code is code
        if field:
            assert caught.value.details[0]["field_violations"][0]["field"] == field


def test_a_revoked_version_cannot_be_previewed_again(
    services: Services, tenant: TenantFixture
) -> None:
    f = family(services, tenant)
    services.revocation.update(f.caller, f.base, f.b2.fingerprint, request(revoke_in="0s"))
    with pytest.raises(ApiError) as caught:
        services.revocation.preview(f.caller, f.base, f.b2.fingerprint, request(revoke_in="0s"))
    assert caught.value.code is Code.FAILED_PRECONDITION


def _preview_statements(services: Services, tenant: TenantFixture, size: int, tag: str) -> int:
    forest = seed_forest(
        services.store, tenant.project_id, descendants=size, buckets_count=10, prefix=tag
    )
    with count_statements(services.store.engine) as log:
        preview = services.revocation.preview(
            tenant.caller(), forest.root_bucket, forest.root_fingerprint, request(revoke_in="0s")
        )
    assert preview.descendants_revoked == size
    assert len(preview.channels) == 20  # every bucket's `latest` and `stable`
    assert len(preview.descendants) == min(size, 200)
    return log.count


def test_the_number_of_queries_does_not_grow_with_the_descendants(
    services: Services, tenant: TenantFixture
) -> None:
    small = _preview_statements(services, tenant, 30, "small")
    large = _preview_statements(services, tenant, 900, "large")
    assert small == large, (small, large)
    assert large <= 10
