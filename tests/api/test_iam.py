"""Bucket IAM policies and principal look-ups on the wire, as terraform-provider-hcp 0.114
calls them (research: the provider's iampolicy package and hcp-sdk-go's resource-manager and
IAM clients)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from packyard.domain.enums import Role
from packyard.services.container import Services
from tests.support import swagger
from tests.support.factories import Api, Identity, TenantFixture, assert_status, make_member

POLICY = "/2019-12-10/resource-manager/resources/iam-policy"


def resource(tenant: TenantFixture, bucket: str) -> str:
    return f"packer/project/{tenant.project_id}/bucket/{bucket}"


def get_policy(api: Api, bucket: str) -> httpx.Response:
    return api.get(POLICY, params={"resource_name": resource(api.tenant, bucket)})


def set_policy(
    api: Api, bucket: str, bindings: list[dict[str, Any]] | None, etag: str
) -> httpx.Response:
    body = {
        "policy": {"bindings": bindings, "etag": etag},
        "resource_name": resource(api.tenant, bucket),
    }
    return api.put(POLICY, body)


def principals(api: Api, *ids: str) -> httpx.Response:
    org = api.tenant.organization_id
    params = [("principal_ids", i) for i in ids] + [("view", "PRINCIPAL_VIEW_BASIC")]
    return api.get(f"/iam/2019-12-10/organizations/{org}/principals", params=params)


def binding(role: str, *members: Identity | str) -> dict[str, Any]:
    return {
        "role_id": f"roles/{role}",
        "members": [
            {
                "member_id": m if isinstance(m, str) else m.principal_id,
                "member_type": "SERVICE_PRINCIPAL",
            }
            for m in members
        ],
    }


def roles_of(policy: dict[str, Any]) -> dict[str, set[str]]:
    return {b["role_id"]: {m["member_id"] for m in b["members"]} for b in policy["bindings"]}


@pytest.fixture
def member(services: Services, tenant: TenantFixture) -> Identity:
    return make_member(services, tenant, project_role=Role.VIEWER)


@pytest.fixture
def bucket(api: Api) -> str:
    api.create_bucket("network-base")
    return "network-base"


# --- GetIamPolicy / SetIamPolicy ---------------------------------------------------------------


def test_a_bucket_without_a_policy_has_no_bindings_and_an_empty_etag(api: Api, bucket: str) -> None:
    policy = api.ok(get_policy(api, bucket))["policy"]
    assert policy == {"bindings": [], "etag": ""}


def test_set_echoes_the_bindings_with_a_new_etag_and_get_reads_them_back(
    api: Api, bucket: str, member: Identity
) -> None:
    viewer = api.tenant.identities[Role.VIEWER]
    wanted = [binding("contributor", member), binding("viewer", viewer)]
    answer = api.ok(set_policy(api, bucket, wanted, ""))
    swagger.validate("ResourceService_SetIamPolicy", answer, spec=swagger.RM_SPEC)
    first = answer["policy"]
    assert roles_of(first) == {
        "roles/contributor": {member.principal_id},
        "roles/viewer": {viewer.principal_id},
    }
    assert first["etag"]
    assert all(
        m["member_type"] == "SERVICE_PRINCIPAL" for b in first["bindings"] for m in b["members"]
    )
    read = api.ok(get_policy(api, bucket))
    swagger.validate("ResourceService_GetIamPolicy", read, spec=swagger.RM_SPEC)
    assert read["policy"] == first
    second = api.ok(set_policy(api, bucket, [binding("admin", member)], first["etag"]))["policy"]
    assert roles_of(second) == {"roles/admin": {member.principal_id}}
    assert second["etag"] not in ("", first["etag"])


def test_a_stale_etag_is_refused_with_409_aborted_and_changes_nothing(
    api: Api, bucket: str, member: Identity
) -> None:
    current = api.ok(set_policy(api, bucket, [binding("viewer", member)], ""))["policy"]
    for stale in ("", "not-the-etag"):
        assert_status(set_policy(api, bucket, [binding("admin", member)], stale), 409, 10)
    assert api.ok(get_policy(api, bucket))["policy"] == current


def test_concurrent_sets_from_one_etag_let_exactly_one_win(
    api: Api, bucket: str, member: Identity
) -> None:
    etag = api.ok(set_policy(api, bucket, [], ""))["policy"]["etag"]
    results: list[int] = []
    barrier = threading.Barrier(4)

    def race(role: str) -> None:
        own = api.as_role(Role.ADMIN)
        barrier.wait()
        results.append(set_policy(own, bucket, [binding(role, member)], etag).status_code)
        own.close()

    threads = [
        threading.Thread(target=race, args=(r,))
        for r in ("viewer", "contributor", "admin", "viewer")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409, 409, 409]


def test_destroy_sends_empty_bindings_with_the_stored_etag(
    api: Api, bucket: str, member: Identity
) -> None:
    etag = api.ok(set_policy(api, bucket, [binding("viewer", member)], ""))["policy"]["etag"]
    emptied = api.ok(set_policy(api, bucket, None, etag))["policy"]  # Go sends "bindings": null
    assert emptied["bindings"] == []
    assert emptied["etag"] not in ("", etag)


def test_a_member_without_member_type_gets_its_own(api: Api, bucket: str, member: Identity) -> None:
    body = [{"role_id": "roles/viewer", "members": [{"member_id": member.principal_id}]}]
    policy = api.ok(set_policy(api, bucket, body, ""))["policy"]
    assert policy["bindings"][0]["members"] == [
        {"member_id": member.principal_id, "member_type": "SERVICE_PRINCIPAL"}
    ]


@pytest.mark.parametrize(
    ("bindings", "field"),
    [
        ([{"role_id": "roles/owner", "members": []}], "policy.bindings.role_id"),
        ([{"role_id": "viewer", "members": []}], "policy.bindings.role_id"),
        (
            [{"role_id": "roles/viewer", "members": [{"member_id": "nobody"}]}],
            "policy.bindings.members.member_id",
        ),
        (
            [
                {
                    "role_id": "roles/viewer",
                    "members": [{"member_id": "MEMBER", "member_type": "GROUP"}],
                }
            ],
            "policy.bindings.members.member_type",
        ),
        (
            [
                {
                    "role_id": "roles/viewer",
                    "members": [{"member_id": "MEMBER", "member_type": "USER"}],
                }
            ],
            "policy.bindings.members.member_type",
        ),
        (
            [{"role_id": "roles/viewer", "members": [{"member_id": ""}]}],
            "policy.bindings.members.member_id",
        ),
        ([binding("viewer", "MEMBER"), binding("viewer", "MEMBER")], "policy.bindings.role_id"),
        (
            [
                {
                    "role_id": "roles/viewer",
                    "members": [{"member_id": "MEMBER"}, {"member_id": "MEMBER"}],
                }
            ],
            "policy.bindings",
        ),
    ],
    ids=[
        "unknown-role",
        "no-prefix",
        "unknown-member",
        "group",
        "wrong-type",
        "empty-id",
        "role-twice",
        "member-twice",
    ],
)
def test_bad_policies_are_refused_naming_the_field_and_change_nothing(
    api: Api, bucket: str, member: Identity, bindings: list[dict[str, Any]], field: str
) -> None:
    import json

    body = json.loads(json.dumps(bindings).replace("MEMBER", member.principal_id))
    error = assert_status(set_policy(api, bucket, body, ""), 400, 3)
    assert error["details"][0]["field_violations"][0]["field"] == field
    assert api.ok(get_policy(api, bucket))["policy"] == {"bindings": [], "etag": ""}


def test_a_member_of_another_organization_is_refused(
    api: Api, bucket: str, services: Services
) -> None:
    from tests.support.factories import make_tenant

    stranger = make_tenant(services).identities[Role.ADMIN]
    assert_status(set_policy(api, bucket, [binding("viewer", stranger)], ""), 400, 3)


@pytest.mark.parametrize(
    "name",
    [
        "packer/project/P/bucket/missing",
        "packer/project/P/bucket",
        "packer/project/P",
        "other/thing",
    ],
)
def test_resource_names_other_than_an_existing_bucket_are_refused(api: Api, name: str) -> None:
    name = name.replace("P", api.tenant.project_id)
    response = api.get(POLICY, params={"resource_name": name})
    if name.endswith("/missing"):
        assert_status(response, 404, 5)  # the provider reads 404 as "no policy"
        body = {"policy": {"bindings": [], "etag": ""}, "resource_name": name}
        assert_status(api.put(POLICY, body), 404, 5)
    else:
        assert_status(response, 400, 3)


def test_without_a_resource_name_or_policy_the_call_is_refused(api: Api, bucket: str) -> None:
    assert_status(api.get(POLICY), 400, 3)
    assert_status(api.get(POLICY, params={"resource_id": "x"}), 400, 3)
    assert_status(api.put(POLICY, {"resource_name": resource(api.tenant, bucket)}), 400, 3)


def test_another_projects_bucket_is_not_found(api: Api, bucket: str, services: Services) -> None:
    from tests.support.factories import make_tenant

    other = Api(api.base_url, make_tenant(services))
    try:
        assert_status(
            other.get(POLICY, params={"resource_name": resource(api.tenant, bucket)}), 404, 5
        )
    finally:
        other.close()


@pytest.mark.parametrize(
    ("project_role", "grant", "reads", "writes"),
    [
        (Role.VIEWER, None, True, False),
        (Role.CONTRIBUTOR, None, True, False),
        (Role.ADMIN, None, True, True),
        (Role.VIEWER, Role.CONTRIBUTOR, True, False),
        (Role.VIEWER, Role.ADMIN, True, True),
        (None, Role.VIEWER, True, False),
        (None, Role.ADMIN, True, True),
    ],
    ids=[
        "viewer",
        "contributor",
        "admin",
        "viewer+bucket-contributor",
        "viewer+bucket-admin",
        "bucket-viewer-only",
        "bucket-admin-only",
    ],
)
def test_who_reads_and_sets_a_bucket_policy(
    api: Api,
    bucket: str,
    services: Services,
    project_role: Role | None,
    grant: Role | None,
    reads: bool,
    writes: bool,
) -> None:
    who = make_member(
        services, api.tenant, project_role=project_role, buckets={bucket: grant} if grant else {}
    )
    as_who = api.as_identity(who)
    try:
        response = get_policy(as_who, bucket)
        etag = api.ok(response)["policy"]["etag"] if reads else ""
        change = set_policy(
            as_who, bucket, [binding("viewer", api.tenant.identities[Role.VIEWER])], etag
        )
        if writes:
            api.ok(change)
        else:
            assert_status(change, 403, 7)
    finally:
        as_who.close()


def test_a_bucket_only_member_lists_and_reads_only_its_bucket(
    api: Api, bucket: str, services: Services
) -> None:
    outsider = make_member(services, api.tenant, project_role=None, buckets={bucket: Role.VIEWER})
    api.create_bucket("app")
    as_outsider = api.as_identity(outsider)
    try:
        listed = api.ok(as_outsider.get("/buckets"))["buckets"]
        assert [b["name"] for b in listed] == [bucket]
        assert_status(as_outsider.get("/buckets/app"), 404, 5)
    finally:
        as_outsider.close()


# --- BatchGetPrincipals ------------------------------------------------------------------------


def test_principals_are_answered_with_their_type_in_the_order_asked(
    api: Api, member: Identity
) -> None:
    admin = api.tenant.identities[Role.ADMIN]
    found = api.ok(principals(api, member.principal_id, admin.principal_id))["principals"]
    assert [(p["id"], p["type"]) for p in found] == [
        (member.principal_id, "PRINCIPAL_TYPE_SERVICE"),
        (admin.principal_id, "PRINCIPAL_TYPE_SERVICE"),
    ]
    # only what the provider reads: names and emails are not for every principal to look up
    assert all(set(p) == {"id", "type", "group_ids"} for p in found)


def test_a_console_user_is_a_user_principal_and_can_be_bound(
    api: Api, bucket: str, services: Services
) -> None:
    from packyard.domain.models import Operator

    t = api.tenant
    made = services.users.create(
        Operator(), t.organization_id, t.project_id, email="ada@example.com", role=Role.VIEWER
    )
    user_id = made.record.user.id
    found = api.ok(principals(api, user_id))["principals"]
    assert [(p["id"], p["type"]) for p in found] == [(user_id, "PRINCIPAL_TYPE_USER")]
    body = [
        {"role_id": "roles/contributor", "members": [{"member_id": user_id, "member_type": "USER"}]}
    ]
    policy = api.ok(set_policy(api, bucket, body, ""))["policy"]
    assert policy["bindings"][0]["members"][0] == {"member_id": user_id, "member_type": "USER"}


def test_an_unknown_principal_id_fails_the_whole_call(api: Api, member: Identity) -> None:
    # The provider dereferences every id it asked for: leaving one out would crash it.
    assert_status(principals(api, member.principal_id, "no-such-id"), 404, 5)
    assert_status(principals(api), 400, 3)


def test_principals_of_another_organization_are_not_found(api: Api, services: Services) -> None:
    from tests.support.factories import make_tenant

    other = make_tenant(services)
    org = other.organization_id
    response = api.get(
        f"/iam/2019-12-10/organizations/{org}/principals",
        params={"principal_ids": other.identities[Role.ADMIN].principal_id},
    )
    assert_status(response, 404, 5)
