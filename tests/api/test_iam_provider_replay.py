"""Bucket IAM traffic recorded from the stock terraform-provider-hcp v0.114.0 (Terraform 1.11.4)
against Packyard, replayed body for body (/work/notes/iam-observed.md).

What the recordings showed that the hand-written model in tests/support/provider_iam.py does not
send: the first SetIamPolicy of a never-set policy has no ``etag`` key at all (the SDK's model
omits an empty one); and after ``terraform import`` the plan compares ``policy_data`` strings,
not policies, so the binding order of GetIamPolicy decides whether it says "No changes"."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from packyard.domain.enums import Role
from packyard.domain.models import Operator
from packyard.services.container import Services
from tests.support.factories import Api, Identity, TenantFixture, assert_status, make_member

POLICY = "/2019-12-10/resource-manager/resources/iam-policy"
_MEMBER_TYPE = {"PRINCIPAL_TYPE_SERVICE": "SERVICE_PRINCIPAL", "PRINCIPAL_TYPE_USER": "USER"}


def resource(tenant: TenantFixture, bucket: str) -> str:
    return f"packer/project/{tenant.project_id}/bucket/{bucket}"


def get_policy(api: Api, bucket: str) -> httpx.Response:
    # the SDK sends resource_name URL-encoded (packer%2Fproject%2F…); httpx does the same
    return api.get(POLICY, params={"resource_name": resource(api.tenant, bucket)})


def put_raw(api: Api, body: dict[str, Any]) -> httpx.Response:
    """A SetIamPolicy body exactly as recorded (key order and omitted keys included)."""
    headers = {**api.headers(), "Content-Type": "application/json"}
    content = json.dumps(body, separators=(",", ":"))
    return api.http.request("PUT", POLICY, content=content, headers=headers)


def principals(api: Api, *ids: str) -> httpx.Response:
    org = api.tenant.organization_id
    params = [("principal_ids", i) for i in ids] + [("view", "PRINCIPAL_VIEW_BASIC")]
    return api.get(f"/iam/2019-12-10/organizations/{org}/principals", params=params)


def member(principal_id: str, kind: str = "SERVICE_PRINCIPAL") -> dict[str, str]:
    return {"member_id": principal_id, "member_type": kind}


def as_sets(policy: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    return {
        b["role_id"]: {(m["member_id"], m["member_type"]) for m in b["members"]}
        for b in policy["bindings"]
    }


# --- what the provider renders (data source) and stores (after a read) -------------------------


def data_source_policy_data(bindings: dict[str, list[tuple[str, str]]]) -> str:
    """``data "hcp_iam_policy"``'s ``policy_data``: bindings in the order Terraform hands the
    ``bindings`` set to the provider, members in the order of each ``principals`` set.

    cty orders a set of strings lexically, and a set of objects by the bytes of its set hash:
    ``<["id1";"id2";];"roles/x";>`` (attributes sorted: ``principals`` before ``role``).
    Recorded for three three-role configurations (notes: "binding order")."""

    def cty_key(role: str, ids: list[str]) -> str:
        return "".join(f'"{i}";' for i in sorted(ids)) + f'];"{role}";>'

    ordered = sorted(bindings.items(), key=lambda b: cty_key(b[0], [i for i, _ in b[1]]))
    policy = {
        "bindings": [
            {
                "members": [member(i, t) for i, t in sorted(held)],
                "role_id": role,
            }
            for role, held in ordered
        ]
    }
    return json.dumps(policy, separators=(",", ":"))


def stored_policy_data(policy: dict[str, Any]) -> str:
    """What ``hcp_packer_bucket_iam_policy`` keeps as ``policy_data`` after a read or an import:
    the answer re-marshalled by the SDK model, in the answer's order, without the etag."""
    data = {
        "bindings": [
            {
                "members": [member(m["member_id"], m["member_type"]) for m in b["members"]],
                "role_id": b["role_id"],
            }
            for b in policy["bindings"]
        ]
    }
    return json.dumps(data, separators=(",", ":"))


@pytest.fixture
def buckets(api: Api) -> tuple[str, str]:
    api.create_bucket("iam-a")
    api.create_bucket("iam-b")
    return "iam-a", "iam-b"


@pytest.fixture
def team(services: Services, tenant: TenantFixture) -> list[Identity]:
    """Four project viewers, ids in creation (= lexical, ULID) order."""
    return [make_member(services, tenant, project_role=Role.VIEWER) for _ in range(4)]


def test_apply_on_a_never_set_policy_as_recorded(
    api: Api, buckets: tuple[str, str], team: list[Identity]
) -> None:
    a, _ = buckets
    p1, p2 = team[0].principal_id, team[1].principal_id
    # 1. GetIamPolicy of a bucket that never had a policy
    assert api.ok(get_policy(api, a)) == {"policy": {"bindings": [], "etag": ""}}
    # 2. BatchGetPrincipals of the setters (two bindings merged by the 1 s batcher)
    found = api.ok(principals(api, p2, p1))["principals"]
    assert [(p["id"], p["type"], p["group_ids"]) for p in found] == [
        (p2, "PRINCIPAL_TYPE_SERVICE", []),
        (p1, "PRINCIPAL_TYPE_SERVICE", []),
    ]
    assert all(set(p) == {"id", "type", "group_ids"} for p in found)  # no names or emails
    # 3. SetIamPolicy: no "etag" key at all (empty, omitted by the SDK model)
    body = {
        "policy": {
            "bindings": [{"members": [member(p1), member(p2)], "role_id": "roles/contributor"}]
        },
        "resource_name": resource(api.tenant, a),
    }
    answer = api.ok(put_raw(api, body))["policy"]
    assert set(answer) == {"bindings", "etag"}
    assert as_sets(answer) == {
        "roles/contributor": {(p1, "SERVICE_PRINCIPAL"), (p2, "SERVICE_PRINCIPAL")}
    }
    assert isinstance(answer["etag"], str) and answer["etag"]
    # 4. plan: GetIamPolicy reads back the same policy under the same etag
    assert api.ok(get_policy(api, a))["policy"] == answer
    # the same body again (no etag, policy now set) is a lost update: refused
    assert_status(put_raw(api, body), 409, 10)


def test_policy_resource_with_a_user_and_a_service_principal_as_recorded(
    api: Api, services: Services, buckets: tuple[str, str], team: list[Identity]
) -> None:
    _, b = buckets
    t = api.tenant
    user_id = services.users.create(
        Operator(), t.organization_id, t.project_id, email="dev@example.com", role=Role.VIEWER
    ).record.user.id
    polc, polv = team[2].principal_id, team[3].principal_id
    # data "hcp_iam_policy": one look-up for every principal of every binding
    found = api.ok(principals(api, polv, user_id, polc))["principals"]
    assert [(p["id"], p["type"]) for p in found] == [
        (polv, "PRINCIPAL_TYPE_SERVICE"),
        (user_id, "PRINCIPAL_TYPE_USER"),
        (polc, "PRINCIPAL_TYPE_SERVICE"),
    ]
    # create: Get (never set) then Set with the data source's policy_data and no etag
    assert api.ok(get_policy(api, b))["policy"]["etag"] == ""
    body = {
        "policy": {
            "bindings": [
                {
                    "members": [member(polc), member(user_id, "USER")],
                    "role_id": "roles/contributor",
                },
                {"members": [member(polv)], "role_id": "roles/viewer"},
            ]
        },
        "resource_name": resource(t, b),
    }
    created = api.ok(put_raw(api, body))["policy"]
    assert as_sets(created) == {
        "roles/contributor": {(polc, "SERVICE_PRINCIPAL"), (user_id, "USER")},
        "roles/viewer": {(polv, "SERVICE_PRINCIPAL")},
    }
    # destroy: Set {"bindings":null,"etag":<state etag>}, no Get first
    gone = api.ok(
        put_raw(
            api,
            {
                "policy": {"bindings": None, "etag": created["etag"]},
                "resource_name": resource(t, b),
            },
        )
    )["policy"]
    assert gone["bindings"] == [] and gone["etag"] not in ("", created["etag"])


def test_destroy_after_a_change_outside_terraform_fails_with_409(
    api: Api, services: Services, buckets: tuple[str, str], team: list[Identity]
) -> None:
    """Recorded: `packyard access grant … --bucket iam-b`, then `terraform destroy
    -refresh=false`: the provider sends the etag its state holds and shows the 409."""
    _, b = buckets
    t = api.tenant
    body = {
        "policy": {
            "bindings": [{"members": [member(team[0].principal_id)], "role_id": "roles/viewer"}]
        },
        "resource_name": resource(t, b),
    }
    state_etag = api.ok(put_raw(api, body))["policy"]["etag"]
    services.access.grant(
        Operator(), t.organization_id, t.project_id, team[1].principal_id, Role.VIEWER, b
    )
    stale = put_raw(
        api, {"policy": {"bindings": None, "etag": state_etag}, "resource_name": resource(t, b)}
    )
    assert_status(stale, 409, 10)
    assert as_sets(api.ok(get_policy(api, b))["policy"]) == {
        "roles/viewer": {
            (team[0].principal_id, "SERVICE_PRINCIPAL"),
            (team[1].principal_id, "SERVICE_PRINCIPAL"),
        }
    }


def test_two_binding_applies_racing_on_one_bucket(
    api: Api, buckets: tuple[str, str], team: list[Identity]
) -> None:
    """Recorded with two working directories applied at once (GetIamPolicy held 2 s by the
    proxy): both read one etag; the second Set gets 409/10 and v0.114.0 does not retry."""
    a, _ = buckets
    rn = resource(api.tenant, a)
    etag = api.ok(get_policy(api, a))["policy"]["etag"]
    first, second = team[0].principal_id, team[1].principal_id
    won = put_raw(
        api,
        {
            "policy": {
                "bindings": [{"members": [member(first)], "role_id": "roles/admin"}],
                "etag": etag,
            },
            "resource_name": rn,
        },
    )
    lost = put_raw(
        api,
        {
            "policy": {
                "bindings": [{"members": [member(second)], "role_id": "roles/admin"}],
                "etag": etag,
            },
            "resource_name": rn,
        },
    )
    api.ok(won)
    error = assert_status(lost, 409, 10)
    assert error["details"] == []
    assert as_sets(api.ok(get_policy(api, a))["policy"]) == {
        "roles/admin": {(first, "SERVICE_PRINCIPAL")}
    }


def test_data_source_binding_order_matches_the_recorded_terraform_output() -> None:
    """The order model itself, against data "hcp_iam_policy" outputs recorded from Terraform
    (p1 < p2 < p4 < p6 < u lexically)."""
    p1, p2, p3, p4, p6, u = "01A1", "01A2", "01A3", "01A4", "01A6", "01A8"
    sp, us = "SERVICE_PRINCIPAL", "USER"

    def order(bindings: dict[str, list[tuple[str, str]]]) -> list[tuple[str, list[str]]]:
        data = json.loads(data_source_policy_data(bindings))
        return [(b["role_id"], [m["member_id"] for m in b["members"]]) for b in data["bindings"]]

    assert order(
        {
            "roles/viewer": [(p1, sp)],
            "roles/admin": [(p6, sp), (p2, sp)],
            "roles/contributor": [(u, us), (p4, sp)],
        }
    ) == [("roles/viewer", [p1]), ("roles/admin", [p2, p6]), ("roles/contributor", [p4, u])]
    assert order(
        {
            "roles/viewer": [(p4, sp), (p2, sp)],
            "roles/admin": [(p2, sp)],
            "roles/contributor": [(p3, sp)],
        }
    ) == [("roles/viewer", [p2, p4]), ("roles/admin", [p2]), ("roles/contributor", [p3])]
    assert order({"roles/viewer": [(u, us)], "roles/contributor": [(p1, sp), (u, us)]}) == [
        ("roles/contributor", [p1, u]),
        ("roles/viewer", [u]),
    ]


def test_import_then_plan_has_no_changes(
    api: Api, services: Services, buckets: tuple[str, str], team: list[Identity]
) -> None:
    """Recorded: policy on iam-b = contributor [polc], viewer [user] (polc < user);
    `terraform import hcp_packer_bucket_iam_policy.b packer/project/<p>/bucket/iam-b`, `plan`
    proposed an update whose only difference was the order of the two bindings."""
    _, b = buckets
    t = api.tenant
    user_id = services.users.create(
        Operator(), t.organization_id, t.project_id, email="dev@example.com", role=Role.VIEWER
    ).record.user.id
    kinds = {team[0].principal_id: "SERVICE_PRINCIPAL", user_id: "USER"}
    first, second = sorted(kinds)  # the binding holding the lower id comes first in the config
    config = {
        "roles/contributor": [(first, kinds[first])],
        "roles/viewer": [(second, kinds[second])],
    }
    policy_data = data_source_policy_data(config)
    api.ok(put_raw(api, {"policy": json.loads(policy_data), "resource_name": resource(t, b)}))
    imported = api.ok(get_policy(api, b))["policy"]  # import = Read
    assert stored_policy_data(imported) == policy_data  # plan compares the strings
