"""Resource-manager IAM policies and IAM principals as HCP's 2019-12-10 clients exchange them.

A policy's role ids are ``roles/viewer``, ``roles/contributor`` and ``roles/admin``; its
members carry ``member_type`` ``SERVICE_PRINCIPAL`` or ``USER`` (groups do not exist in
Packyard). Every member is answered with its type: the Terraform provider dereferences it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from packyard.api.wire import Body
from packyard.domain.enums import MemberType, Role
from packyard.domain.models import BucketPolicy
from packyard.errors import invalid
from packyard.services.access import Member, RequestedMember

_ROLE_PREFIX = "roles/"
_PRINCIPAL_TYPES = {
    MemberType.SERVICE_PRINCIPAL: "PRINCIPAL_TYPE_SERVICE",
    MemberType.USER: "PRINCIPAL_TYPE_USER",
}


class WireMember(Body):
    member_id: str | None = None
    member_type: str | None = None


class WireBinding(Body):
    role_id: str | None = None
    members: list[WireMember] | None = None


class WirePolicy(Body):
    bindings: list[WireBinding] | None = None
    etag: str | None = None


class SetIamPolicyBody(Body):
    policy: WirePolicy | None = None
    resource_name: str | None = None
    resource_id: str | None = None


def role_of(role_id: str | None) -> Role:
    value = (role_id or "").removeprefix(_ROLE_PREFIX)
    if not (role_id or "").startswith(_ROLE_PREFIX) or value not in Role.__members__.values():
        raise invalid(
            f"role_id {(role_id or '')[:64]!r} is not a bucket role: use roles/viewer, "
            "roles/contributor or roles/admin.",
            field="policy.bindings.role_id",
        )
    return Role(value)


def requested_bindings(policy: WirePolicy) -> dict[Role, list[RequestedMember]]:
    """The policy's bindings by role. A role may appear once; ``bindings: null`` is empty."""
    bindings: dict[Role, list[RequestedMember]] = {}
    for binding in policy.bindings or []:
        role = role_of(binding.role_id)
        if role in bindings:
            raise invalid(
                f"roles/{role.value} has more than one binding; list all its members in one.",
                field="policy.bindings.role_id",
            )
        bindings[role] = [_requested(m) for m in binding.members or []]
    return bindings


def _requested(member: WireMember) -> RequestedMember:
    if not member.member_id:
        raise invalid("Every member needs a member_id.", field="policy.bindings.members.member_id")
    kind = member.member_type
    if kind in (None, "", "UNSET"):
        return member.member_id, None
    if kind not in MemberType.__members__:
        raise invalid(
            f"member_type {kind[:32]!r} is not supported: use SERVICE_PRINCIPAL or USER.",
            field="policy.bindings.members.member_type",
        )
    return member.member_id, MemberType(kind)


def policy(p: BucketPolicy) -> dict[str, Any]:
    bindings = [
        {
            "role_id": f"{_ROLE_PREFIX}{role.value}",
            "members": [
                {"member_id": m.id, "member_type": m.type.value}
                for m in sorted(members, key=lambda m: m.id)
            ],
        }
        for role, members in p.bindings.items()
    ]
    return {"bindings": sorted(bindings, key=_terraform_set_order), "etag": p.etag}


def _terraform_set_order(binding: dict[str, Any]) -> str:
    """Bindings in the order Terraform keeps the ``hcp_iam_policy`` data source's set of
    bindings: by the sorted member ids, then the role. ``terraform plan`` compares the
    policy JSON as text after an import, so any other order shows a change that is none."""
    ids = sorted(m["member_id"] for m in binding["members"])
    return "".join(f'"{i}";' for i in ids) + f'];"{binding["role_id"]}";>'


def principals(found: Sequence[Member]) -> dict[str, Any]:
    return {"principals": [_principal(m) for m in found]}


def _principal(m: Member) -> dict[str, Any]:
    # Only what the Terraform provider reads (id and type): names and emails are not for
    # every principal of the organization to look up.
    return {"id": m.member.id, "type": _PRINCIPAL_TYPES[m.member.type], "group_ids": []}
