"""terraform-provider-hcp 0.114's bucket IAM resources, call by call.

Each method does what one Terraform operation of ``hcp_packer_bucket_iam_binding``,
``hcp_packer_bucket_iam_policy`` or data ``hcp_iam_policy`` sends, with the provider's own
checks on the answers (its semantic policy equality decides whether a plan shows changes;
a member without ``member_type`` would crash it). Sources: internal/clients/iampolicy/
(resource_iam_binding.go, iam_binding_batcher.go, resource_iam_policy.go),
internal/clients/iam.go, internal/provider/resourcemanager/data_source_iam_policy.go.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.factories import Api

POLICY = "/2019-12-10/resource-manager/resources/iam-policy"
_MEMBER_TYPES = {"PRINCIPAL_TYPE_SERVICE": "SERVICE_PRINCIPAL", "PRINCIPAL_TYPE_USER": "USER"}


class ProviderError(Exception):
    """A diagnostic the provider would show (the HTTP status it branched on, if any)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class PolicyState:
    """``hcp_packer_bucket_iam_policy`` state: ``policy_data`` (no etag) and ``etag``."""

    resource_name: str
    policy_data: str
    etag: str


@dataclass
class Provider:
    api: Api
    calls: list[tuple[str, str]] = field(default_factory=list)

    # --- the SDK calls ------------------------------------------------------------------
    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        self.calls.append((method, path))
        return self.api.request(method, path, **kw)

    def get_iam_policy(self, resource_name: str) -> dict[str, Any]:
        response = self._call("GET", POLICY, params={"resource_name": resource_name})
        if response.status_code == 404:
            return {
                "bindings": None,
                "etag": "",
            }  # "no policy" (resource_packer_bucket_iam_policy.go)
        if response.status_code != 200:
            raise ProviderError("failed to retrieve resource IAM policy", response.status_code)
        policy: dict[str, Any] = response.json()["policy"]
        _require_member_types(policy)
        return policy

    def set_iam_policy(self, resource_name: str, policy: dict[str, Any]) -> dict[str, Any]:
        body = {"policy": policy, "resource_name": resource_name}
        response = self._call("PUT", POLICY, json=body)
        if response.status_code != 200:
            raise ProviderError("failed to update resource IAM policy", response.status_code)
        answer: dict[str, Any] = response.json()["policy"]
        _require_member_types(answer)
        return answer

    def batch_get_principals(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        org = self.api.tenant.organization_id
        params = [("principal_ids", i) for i in ids] + [("view", "PRINCIPAL_VIEW_BASIC")]
        response = self._call(
            "GET", f"/iam/2019-12-10/organizations/{org}/principals", params=params
        )
        if response.status_code != 200:
            raise ProviderError("failed to batch get principals", response.status_code)
        found = {p["id"]: p for p in response.json()["principals"]}
        missing = [i for i in ids if i not in found]
        if missing:  # the provider dereferences nil here and panics
            raise AssertionError(f"provider would panic: principals {missing} missing")
        return found

    # --- hcp_packer_bucket_iam_binding (one batch = bindings of one bucket) --------------
    def modify_bindings(
        self,
        resource_name: str,
        *,
        set_: Sequence[tuple[str, str]] = (),
        remove: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        """The batcher: Get, BatchGetPrincipals of the setters (none: no call), merge, Set."""
        policy = self.get_iam_policy(resource_name)
        members = _to_map(policy)
        types: dict[str, str | None] = {}
        if set_:
            found = self.batch_get_principals(list(dict.fromkeys(p for _, p in set_)))
            types = {i: _MEMBER_TYPES.get(p["type"]) for i, p in found.items()}
        for role, principal in remove:
            members.get(role, {}).pop(principal, None)
        for role, principal in set_:
            members.setdefault(role, {})[principal] = types[principal]
        bindings = [
            {
                "role_id": role,
                "members": [{"member_id": i, "member_type": t} for i, t in held.items()],
            }
            for role, held in members.items()
            if held
        ]
        return self.set_iam_policy(resource_name, {"bindings": bindings, "etag": policy["etag"]})

    def binding_exists(self, resource_name: str, role: str, principal: str) -> bool:
        """Read: a binding missing from the policy is removed from state."""
        return principal in _to_map(self.get_iam_policy(resource_name)).get(role, {})

    # --- hcp_packer_bucket_iam_policy -----------------------------------------------------
    def policy_create(self, resource_name: str, policy_data: str) -> PolicyState:
        wanted = json.loads(policy_data)
        current = self.get_iam_policy(resource_name)
        answer = self.set_iam_policy(
            resource_name, {"bindings": wanted.get("bindings"), "etag": current["etag"]}
        )
        return _state(resource_name, answer)

    def policy_read(self, resource_name: str) -> PolicyState:
        return _state(resource_name, self.get_iam_policy(resource_name))

    def policy_delete(self, state: PolicyState) -> None:
        self.set_iam_policy(state.resource_name, {"bindings": None, "etag": state.etag})

    # --- data "hcp_iam_policy" ------------------------------------------------------------
    def policy_data(self, bindings: dict[str, list[str]]) -> str:
        """One BatchGetPrincipals for every principal, then the policy JSON it renders."""
        ids = list(dict.fromkeys(i for held in bindings.values() for i in held))
        found = self.batch_get_principals(ids) if ids else {}
        policy = {
            "bindings": [
                {
                    "members": [
                        {"member_id": i, "member_type": _MEMBER_TYPES[found[i]["type"]]}
                        for i in held
                    ],
                    "role_id": role,
                }
                for role, held in bindings.items()
            ]
        }
        return json.dumps(policy)


def same_policy(a: str, b: str) -> bool:
    """The provider's semantic equality of two policy_data values (iam.go): same etag, same
    roles, and per role the same members with the same member types."""
    left, right = json.loads(a), json.loads(b)
    return left.get("etag", "") == right.get("etag", "") and _typed_map(left) == _typed_map(right)


def _require_member_types(policy: dict[str, Any]) -> None:
    for b in policy.get("bindings") or []:
        for m in b.get("members") or []:
            assert m.get("member_type"), f"provider would panic on a member without type: {m}"


def _to_map(policy: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    return {
        b["role_id"]: {m["member_id"]: m.get("member_type") for m in b.get("members") or []}
        for b in policy.get("bindings") or []
    }


def _typed_map(policy: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    return {role: held for role, held in _to_map(policy).items() if held}


def _state(resource_name: str, policy: dict[str, Any]) -> PolicyState:
    data = {"bindings": policy.get("bindings") or []}
    return PolicyState(resource_name, json.dumps(data), policy.get("etag", ""))
