"""Enforced blocks in the service layer: validation before storing, link semantics,
refused deletions, the audit record of every change, and who may do what."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from packyard.domain.enums import Role
from packyard.errors import ApiError, Code
from packyard.services.container import Services
from packyard.store.schema import audit_events, enforced_block_versions, enforced_blocks
from tests.support.factories import TenantFixture, unique

HCL = 'provisioner "shell-local" {\n  inline = ["echo enforced"]\n}\n'
HCL_JSON = '{"provisioner": [{"shell-local": {"inline": ["echo enforced"]}}]}'
LEGACY = '{"provisioners": [{"type": "shell-local", "inline": ["echo enforced"]}]}'


def _error(exc: pytest.ExceptionInfo[ApiError]) -> tuple[Code, str | None]:
    details = exc.value.details
    field = details[0]["field_violations"][0]["field"] if details else None
    return exc.value.code, field


def _count(services: Services, table: object) -> int:
    with services.store.read() as conn:
        return len(conn.execute(select(table)).all())  # type: ignore[call-overload]


def _bucket(services: Services, tenant: TenantFixture) -> str:
    name = unique("bucket")
    services.buckets.create(tenant.caller(), name, None, None)
    return name


def _create(services: Services, tenant: TenantFixture, **kw: object) -> str:
    fields: dict[str, object] = {
        "name": unique("block"),
        "template_type_name": "HCL2",
        "block_content": HCL,
    }
    fields.update(kw)
    block = services.enforced.create(tenant.caller(), **fields)  # type: ignore[arg-type]
    return block.id


def test_create_stores_the_block_with_its_first_version(
    services: Services, tenant: TenantFixture
) -> None:
    block = services.enforced.create(
        tenant.caller(),
        name="cis",
        template_type_name="HCL2",
        block_content=HCL,
        labels={"team": "sec"},
        additional_description="CIS level 1",
    )
    got = services.enforced.get(tenant.caller(Role.VIEWER), block.id)
    assert got.name == "cis" and got.labels == {"team": "sec"}
    assert got.latest_version is not None
    assert got.latest_version.version == "v1"
    assert got.latest_version.block_content == HCL
    assert services.enforced.get(tenant.caller(), "cis").id == block.id  # by name too
    with pytest.raises(ApiError) as exc:
        _create(services, tenant, name="cis")
    assert exc.value.code is Code.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("kind", "content"),
    [("HCL2", HCL), ("HCL2", HCL_JSON), ("JSON", LEGACY), ("hcl2", HCL)],
)
def test_accepted_forms(services: Services, tenant: TenantFixture, kind: str, content: str) -> None:
    _create(services, tenant, template_type_name=kind, block_content=content)


@pytest.mark.parametrize(
    ("kind", "content", "field", "position"),
    [
        ("HCL2", 'provisioner "shell" {\n  inline = [\n', "block_content", "line 3, column 1"),
        ("HCL2", 'provisioner "shell" {\n  x = @\n}\n', "block_content", "line 2, column"),
        ("HCL2", 'variable "x" {}\n', "block_content", "line 1, column 1"),
        ("HCL2", 'source "null" "a" {}\n', "block_content", "line 1"),
        ("HCL2", "foo = 1\n", "block_content", "line 1"),
        ("HCL2", 'provisioner "a" "b" {}\n', "block_content", "line 1"),
        ("HCL2", 'provisioner "a" {\n only = ["x"]\n except = ["y"]\n}\n', "block_content", None),
        ("HCL2", 'provisioner "a" {\n timeout = "soon"\n}\n', "block_content", None),
        ("HCL2", '{"provisioner": [], "build": {}}', "block_content", None),
        ("HCL2", "", "block_content", None),
        ("HCL2", HCL * (64 * 1024 // len(HCL) + 1), "block_content", None),
        ("JSON", HCL, "block_content", "line 1, column 1"),
        ("JSON", '{"provisioners": [{"inline": []}]}', "block_content", None),
        ("JSON", '{"provisioners": [{"type": "shell",\n "x": ]}', "block_content", "line 2"),
        ("TEMPLATE_TYPE_UNSET", HCL, "template_type", None),
        (None, HCL, "template_type", None),
    ],
)
def test_bad_content_is_refused_before_anything_is_stored(
    services: Services,
    tenant: TenantFixture,
    kind: str | None,
    content: str,
    field: str,
    position: str | None,
) -> None:
    with pytest.raises(ApiError) as exc:
        _create(services, tenant, template_type_name=kind, block_content=content)
    assert _error(exc) == (Code.INVALID_ARGUMENT, field)
    if position is not None:
        assert position in exc.value.message
    assert _count(services, enforced_blocks) == 0
    assert _count(services, enforced_block_versions) == 0


def test_versions_are_immutable_but_for_their_description(
    services: Services, tenant: TenantFixture
) -> None:
    block_id = _create(services, tenant)
    admin = tenant.caller()
    v2 = services.enforced.create_version(
        admin, block_id, version="v2", template_type_name="JSON", block_content=LEGACY
    )
    v3 = services.enforced.create_version(
        admin, block_id, version=None, template_type_name="HCL2", block_content=HCL
    )
    assert v3.version == "v3"
    with pytest.raises(ApiError) as exc:
        services.enforced.create_version(
            admin, block_id, version="v2", template_type_name="HCL2", block_content=HCL
        )
    assert exc.value.code is Code.ALREADY_EXISTS
    listed = services.enforced.versions(admin, block_id).versions
    assert [v.version for v in listed] == ["v3", "v2", "v1"]
    assert services.enforced.get(admin, block_id).latest_version.id == v3.id  # type: ignore[union-attr]
    updated = services.enforced.update_version(
        admin, block_id, v2.id, additional_description="legacy", update_mask="additionalDescription"
    )
    assert updated.additional_description == "legacy" and updated.block_content == LEGACY
    with pytest.raises(ApiError) as exc:
        services.enforced.update_version(
            admin, block_id, v2.id, additional_description="x", update_mask="block_content"
        )
    assert exc.value.code is Code.INVALID_ARGUMENT


def test_update_renames_and_relabels_by_mask(services: Services, tenant: TenantFixture) -> None:
    block_id = _create(services, tenant, labels={"a": "1"})
    admin = tenant.caller()
    block = services.enforced.update(
        admin, block_id, name="renamed", labels={"b": "2"}, update_mask="labels"
    )
    assert block.name != "renamed" and block.labels == {"b": "2"}
    block = services.enforced.update(
        admin, block_id, name="renamed", labels=None, update_mask="name"
    )
    assert block.name == "renamed" and block.labels == {"b": "2"}
    other = _create(services, tenant)
    with pytest.raises(ApiError) as exc:
        services.enforced.update(admin, other, name="renamed", labels=None, update_mask="name")
    assert exc.value.code is Code.ALREADY_EXISTS


def test_links_replace_the_set_and_move_between_versions(
    services: Services, tenant: TenantFixture
) -> None:
    admin = tenant.caller()
    a, b, c = (_bucket(services, tenant) for _ in range(3))
    block_id = _create(services, tenant)
    v1 = services.enforced.versions(admin, block_id).versions[0]
    v2 = services.enforced.create_version(
        admin, block_id, version="v2", template_type_name="HCL2", block_content=HCL
    )
    links = services.enforced.manage_links(admin, block_id, v1.id, [a, b])
    assert sorted(x.bucket_name for x in links) == sorted([a, b])
    # Linking b to v2 moves it off v1: one version per block per bucket.
    services.enforced.manage_links(admin, block_id, "v2", [b, c])
    assert [x.bucket_name for x in services.enforced.manage_links(admin, block_id, v1.id, [a])] == [
        a
    ]
    linked_v2 = services.enforced.linked(admin, block_id, v2.id)
    assert sorted(x.bucket.name for x in linked_v2) == sorted([b, c])
    injected = {name: services.enforced.for_bucket(admin, name) for name in (a, b, c)}
    assert [v.id for _, v in injected[a]] == [v1.id]
    assert [v.id for _, v in injected[b]] == [v2.id]
    # Replacing with nothing (a Go client's null) unlinks them all.
    assert services.enforced.manage_links(admin, block_id, v2.id, None) == []
    assert services.enforced.for_bucket(admin, b) == []
    with pytest.raises(ApiError) as exc:
        services.enforced.manage_links(admin, block_id, v1.id, [a, "no-such-bucket"])
    assert exc.value.code is Code.NOT_FOUND and "no-such-bucket" in exc.value.message
    unchanged = services.enforced.linked(admin, block_id, v1.id)
    assert [x.bucket.name for x in unchanged] == [a]


def test_linked_versions_and_blocks_are_not_deleted(
    services: Services, tenant: TenantFixture
) -> None:
    admin = tenant.caller()
    bucket = _bucket(services, tenant)
    block_id = _create(services, tenant)
    services.enforced.create_version(
        admin, block_id, version="v2", template_type_name="HCL2", block_content=HCL
    )
    services.enforced.manage_links(admin, block_id, "v1", [bucket])
    for attempt in (
        lambda: services.enforced.delete_version(admin, block_id, "v1"),
        lambda: services.enforced.delete(admin, block_id),
    ):
        with pytest.raises(ApiError) as exc:
            attempt()
        assert exc.value.code is Code.FAILED_PRECONDITION and bucket in exc.value.message
    services.enforced.delete_version(admin, block_id, "v2")
    services.enforced.manage_links(admin, block_id, "v1", [])
    services.enforced.delete(admin, block_id)
    with pytest.raises(ApiError) as exc:
        services.enforced.get(admin, block_id)
    assert exc.value.code is Code.NOT_FOUND
    assert _count(services, enforced_block_versions) == 0


def test_deleting_a_bucket_drops_its_links(services: Services, tenant: TenantFixture) -> None:
    admin = tenant.caller()
    bucket = _bucket(services, tenant)
    block_id = _create(services, tenant)
    services.enforced.manage_links(admin, block_id, "v1", [bucket])
    services.buckets.delete(admin, bucket)
    services.enforced.delete(admin, block_id)


def test_for_bucket_of_a_missing_bucket_is_not_found(
    services: Services, tenant: TenantFixture
) -> None:
    with pytest.raises(ApiError) as exc:
        services.enforced.for_bucket(tenant.caller(), "missing")
    assert exc.value.code is Code.NOT_FOUND


def test_every_change_is_audited(services: Services, tenant: TenantFixture) -> None:
    admin = tenant.caller()
    bucket = _bucket(services, tenant)
    block_id = _create(services, tenant)
    services.enforced.update(admin, block_id, name=None, labels={"k": "v"}, update_mask="labels")
    services.enforced.create_version(
        admin, block_id, version="v2", template_type_name="HCL2", block_content=HCL
    )
    services.enforced.update_version(
        admin, block_id, "v2", additional_description="d", update_mask=None
    )
    services.enforced.manage_links(admin, block_id, "v2", [bucket])
    services.enforced.manage_links(admin, block_id, "v2", [])
    services.enforced.delete_version(admin, block_id, "v1")
    services.enforced.delete(admin, block_id)
    with services.store.read() as conn:
        rows = conn.execute(
            select(audit_events.c.description, audit_events.c.record)
            .where(audit_events.c.scope == tenant.project_id)
            .order_by(audit_events.c.seq)
        ).all()
    enforced = [(r.description, r.record) for r in rows if "enforced" in r.description]
    assert [d for d, _ in enforced] == [
        "Created enforced block",
        "Updated enforced block",
        "Created enforced block version",
        "Updated enforced block version",
        "Linked enforced block to buckets",
        "Linked enforced block to buckets",
        "Deleted enforced block version",
        "Deleted enforced block",
    ]
    linked = enforced[4][1]
    assert linked["after"] == {"buckets": [bucket]} and linked["before"] == {"buckets": []}


@pytest.mark.parametrize("role", [Role.VIEWER, None])
def test_only_project_writers_change_blocks(
    services: Services, tenant: TenantFixture, role: Role | None
) -> None:
    admin = tenant.caller()
    bucket = _bucket(services, tenant)
    block_id = _create(services, tenant)
    caller = replace(tenant.caller(Role.VIEWER), role=role, bucket_roles={"any": Role.ADMIN})
    writes = [
        lambda: services.enforced.create(
            caller, name="x", template_type_name="HCL2", block_content=HCL
        ),
        lambda: services.enforced.update(caller, block_id, name="y", labels=None, update_mask=None),
        lambda: services.enforced.delete(caller, block_id),
        lambda: services.enforced.create_version(
            caller, block_id, version="v9", template_type_name="HCL2", block_content=HCL
        ),
        lambda: services.enforced.update_version(
            caller, block_id, "v1", additional_description="z", update_mask=None
        ),
        lambda: services.enforced.delete_version(caller, block_id, "v1"),
        lambda: services.enforced.manage_links(caller, block_id, "v1", [bucket]),
    ]
    for write in writes:
        with pytest.raises(ApiError) as exc:
            write()
        assert exc.value.code is Code.PERMISSION_DENIED
    assert services.enforced.get(admin, block_id).name != "y"


@pytest.mark.parametrize("role", [Role.CONTRIBUTOR, Role.ADMIN])
def test_contributors_and_admins_manage(
    services: Services, tenant: TenantFixture, role: Role
) -> None:
    caller = tenant.caller(role)
    bucket = _bucket(services, tenant)
    block = services.enforced.create(
        caller, name=unique("b"), template_type_name="HCL2", block_content=HCL
    )
    services.enforced.manage_links(caller, block.id, "v1", [bucket])
    services.enforced.manage_links(caller, block.id, "v1", [])
    services.enforced.delete(caller, block.id)


def test_viewers_read_and_bucket_grants_see_only_their_buckets_blocks(
    services: Services, tenant: TenantFixture
) -> None:
    admin = tenant.caller()
    mine, other = _bucket(services, tenant), _bucket(services, tenant)
    block_id = _create(services, tenant)
    services.enforced.manage_links(admin, block_id, "v1", [mine, other])
    viewer = tenant.caller(Role.VIEWER)
    assert [b.id for b in services.enforced.list_all(viewer)] == [block_id]
    assert len(services.enforced.linked(viewer, block_id, "v1")) == 2
    assert len(services.enforced.for_bucket(viewer, mine)) == 1
    with services.store.read() as conn:
        from packyard.store.buckets import BucketRepo

        mine_id = BucketRepo(conn).get(tenant.project_id, mine).id  # type: ignore[union-attr]
    granted = replace(viewer, role=None, bucket_roles={mine_id: Role.CONTRIBUTOR})
    assert [b.name for b, _ in services.enforced.for_bucket(granted, mine)] != []
    with pytest.raises(ApiError) as exc:
        services.enforced.for_bucket(granted, other)
    assert exc.value.code is Code.NOT_FOUND  # not visible: answered as missing
    with pytest.raises(ApiError) as exc:
        services.enforced.list_all(granted)
    assert exc.value.code is Code.PERMISSION_DENIED
