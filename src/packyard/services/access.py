"""Who holds which role: bucket IAM policies (HCP's resource-manager calls) and the grant,
revoke and list operations of ``packyard access``.

The rules themselves live in :mod:`packyard.domain.access`. Every change is one
transaction under the project's write generation (cached reads of the project are dropped)
and moves the bucket's policy etag, so a Terraform run holding an older etag is refused with
409/10 instead of overwriting what changed meanwhile. Running servers apply a change within
the role cache's few seconds.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from packyard.domain.access import may_manage_access, may_manage_bucket_access
from packyard.domain.enums import MemberType, Role
from packyard.domain.events import AuditAction, Change
from packyard.domain.models import Bucket, BucketPolicy, Caller, Operator, PolicyMember
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code, invalid, not_found, permission_denied
from packyard.services.journal import record
from packyard.services.lookup import bucket_missing, bucket_or_404
from packyard.services.recording import simple
from packyard.store.buckets import BucketRepo
from packyard.store.engine import Store
from packyard.store.grants import GrantRepo
from packyard.store.tenancy import TenancyRepo

Actor = Caller | Operator
RequestedMember = tuple[str, MemberType | None]
"""A member as a policy names it: its id and, if given, its type."""
MAX_POLICY_MEMBERS = 1000


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One role of one member, on the project (``bucket`` is ``None``) or on one bucket."""

    member: PolicyMember
    name: str
    role: Role
    bucket: str | None


@dataclass(frozen=True, slots=True)
class Member:
    member: PolicyMember
    name: str


class AccessService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # --- bucket IAM policies (resource-manager GetIamPolicy / SetIamPolicy) -------------------

    def policy(self, caller: Caller, bucket_name: str) -> BucketPolicy:
        """The bucket's policy, for anyone who may see the bucket."""
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            return GrantRepo(conn).policy(bucket.id)

    def set_policy(
        self,
        caller: Caller,
        bucket_name: str,
        bindings: Mapping[Role, Sequence[RequestedMember]],
        etag: str,
    ) -> BucketPolicy:
        """Replace the bucket's grants with ``bindings`` if ``etag`` names its current state
        (an empty etag: the bucket never had a policy). Members must belong to the
        organization; a member given without a type gets its own."""
        _check_size(bindings)
        with self.store.write(caller.project_id) as conn:
            bucket = _managed_bucket(conn, caller, bucket_name)
            repo = GrantRepo(conn)
            current = repo.lock_etag(bucket.id)
            if etag != current and not etag:
                raise ApiError(
                    Code.ABORTED,
                    f"The IAM policy of bucket {bucket.name} exists: send the etag "
                    "GetIamPolicy answered with it.",
                )
            if etag != current:
                raise ApiError(
                    Code.ABORTED,
                    f"The IAM policy of bucket {bucket.name} changed since etag {etag[:64]!r} "
                    "was read; read it again and retry.",
                )
            checked = _resolve(repo, caller.organization_id, bindings)
            repo.replace(bucket.id, checked, etag=_new_etag(), now=utcnow())
            policy = repo.policy(bucket.id)
            change = simple(
                AuditAction.UPDATE,
                "Updated bucket access policy",
                bucket.name,
                bucket={"id": bucket.id, "name": bucket.name},
                bindings={
                    role.value: [{"id": m.id, "type": m.type.value} for m in members]
                    for role, members in policy.bindings.items()
                },
            )
            record(conn, caller.project_id, caller, change)
            return policy

    def members(
        self, caller_principal: str, organization_id: str, ids: Sequence[str]
    ) -> list[Member]:
        """BatchGetPrincipals: the principals and users ``ids`` name, for a principal of the
        same organization. Every id must be known (stock clients crash on a missing one)."""
        if not ids:
            raise invalid("principal_ids is required.", field="principal_ids")
        if len(ids) > MAX_POLICY_MEMBERS:
            raise invalid(
                f"At most {MAX_POLICY_MEMBERS} principal_ids per call.", field="principal_ids"
            )
        with self.store.read() as conn:
            own = TenancyRepo(conn).principal_organization(caller_principal)
            if own != organization_id:
                raise not_found(f"Organization {organization_id[:64]} is not accessible.")
            found = GrantRepo(conn).organization_members(organization_id, ids)
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        if missing:
            raise not_found(
                "No principal with id "
                + ", ".join(m[:64] for m in missing[:10])
                + f" in organization {organization_id}."
            )
        return [Member(PolicyMember(i, found[i][0]), found[i][1]) for i in dict.fromkeys(ids)]

    # --- packyard access grant | revoke | list ------------------------------------------------

    def list(
        self, actor: Actor, organization_id: str, project_id: str, bucket_name: str | None = None
    ) -> list[AccessEntry]:
        """The project's roles and every bucket grant (or one bucket's grants)."""
        with self.store.read() as conn:
            _project(conn, organization_id, project_id, lock=False)
            repo = GrantRepo(conn)
            if bucket_name is None:
                _require_admin(actor, organization_id, project_id)
                entries = [
                    AccessEntry(member, name, role, None)
                    for member, name, role in repo.project_roles(project_id)
                ]
                grants = repo.project_grants(project_id)
            else:
                bucket = _bucket(conn, actor, project_id, bucket_name)
                _require_bucket_admin(actor, bucket)
                entries, grants = [], repo.project_grants(project_id, bucket.id)
            names = repo.organization_members(organization_id, [g[2].id for g in grants])
        entries += [
            AccessEntry(member, names.get(member.id, (member.type, member.id))[1], role, bucket)
            for _, bucket, member, role in grants
        ]
        return sorted(entries, key=lambda e: (e.bucket or "", e.name, e.role.rank))

    def grant(
        self,
        actor: Actor,
        organization_id: str,
        project_id: str,
        ref: str,
        role: Role,
        bucket_name: str | None = None,
    ) -> AccessEntry:
        """Give a member ``role`` on the project (replacing its project role) or on one bucket
        (replacing its grant there)."""
        with self.store.write(project_id) as conn:
            _project(conn, organization_id, project_id)
            repo = GrantRepo(conn)
            member, name = _member(repo, organization_id, ref)
            if bucket_name is None:
                _require_admin(actor, organization_id, project_id)
                if role is not Role.ADMIN:
                    _keep_an_admin(conn, repo, project_id, member)
                repo.set_project_role(project_id, member, role)
            else:
                bucket = _bucket(conn, actor, project_id, bucket_name)
                _require_bucket_admin(actor, bucket)
                _change_bucket(repo, bucket, member, role)
            record(
                conn,
                project_id,
                actor,
                _access(AuditAction.CREATE, "Granted access", member, name, role, bucket_name),
            )
        return AccessEntry(member, name, role, bucket_name)

    def revoke(
        self,
        actor: Actor,
        organization_id: str,
        project_id: str,
        ref: str,
        bucket_name: str | None = None,
    ) -> None:
        """Take a member's project role, or its grant on one bucket, away (404/5 if it held
        none there)."""
        with self.store.write(project_id) as conn:
            _project(conn, organization_id, project_id)
            repo = GrantRepo(conn)
            member, name = _member(repo, organization_id, ref)
            if bucket_name is None:
                _require_admin(actor, organization_id, project_id)
                if repo.project_role(project_id, member) is None:
                    raise not_found(f"{name} has no role on this project.")
                _keep_an_admin(conn, repo, project_id, member)
                repo.set_project_role(project_id, member, None)
                record(
                    conn,
                    project_id,
                    actor,
                    _access(AuditAction.DELETE, "Revoked access", member, name, None, None),
                )
                return
            bucket = _bucket(conn, actor, project_id, bucket_name)
            _require_bucket_admin(actor, bucket)
            if not any(
                m.id == member.id for ms in repo.policy(bucket.id).bindings.values() for m in ms
            ):
                raise not_found(f"{name} has no role on bucket {bucket.name}.")
            _change_bucket(repo, bucket, member, None)
            record(
                conn,
                project_id,
                actor,
                _access(AuditAction.DELETE, "Revoked access", member, name, None, bucket.name),
            )


def _access(
    action: AuditAction,
    description: str,
    member: PolicyMember,
    name: str,
    role: Role | None,
    bucket_name: str | None,
) -> Change:
    grant: dict[str, object] = {
        "member": {"id": member.id, "type": member.type.value, "name": name},
        "role": role.value if role is not None else "",
        "scope": "bucket" if bucket_name else "project",
    }
    return simple(action, description, bucket_name or "", grant=grant)


def _change_bucket(
    repo: GrantRepo, bucket: Bucket, member: PolicyMember, role: Role | None
) -> None:
    repo.lock_etag(bucket.id)
    current = repo.policy(bucket.id)
    bindings = {
        r: tuple(m for m in members if m.id != member.id) for r, members in current.bindings.items()
    }
    if role is not None:
        bindings[role] = (*bindings.get(role, ()), member)
    repo.replace(bucket.id, bindings, etag=_new_etag(), now=utcnow())


def _new_etag() -> str:
    return secrets.token_urlsafe(18)


def _check_size(bindings: Mapping[Role, Sequence[RequestedMember]]) -> None:
    total = sum(len(members) for members in bindings.values())
    if total > MAX_POLICY_MEMBERS:
        raise invalid(
            f"A policy names at most {MAX_POLICY_MEMBERS} members; this one names {total}.",
            field="policy.bindings",
        )
    for role, members in bindings.items():
        ids = [member_id for member_id, _ in members]
        if len(set(ids)) != len(ids):
            raise invalid(
                f"The binding of roles/{role.value} names a member more than once.",
                field="policy.bindings",
            )


def _resolve(
    repo: GrantRepo, organization_id: str, bindings: Mapping[Role, Iterable[RequestedMember]]
) -> dict[Role, tuple[PolicyMember, ...]]:
    """The bindings with every member checked against the organization (one statement)."""
    ids = [member_id for members in bindings.values() for member_id, _ in members]
    known = repo.organization_members(organization_id, ids)
    checked: dict[Role, tuple[PolicyMember, ...]] = {}
    for role, members in bindings.items():
        resolved = []
        for member_id, given_type in members:
            found = known.get(member_id)
            if found is None:
                raise invalid(
                    f"Member {member_id[:64]} is not a service principal or user of this "
                    "organization (name service principals by their id, not their client "
                    "id, and users by their user id).",
                    field="policy.bindings.members.member_id",
                )
            if given_type is not None and given_type is not found[0]:
                raise invalid(
                    f"Member {member_id[:64]} is a {found[0].value}, not a {given_type.value}.",
                    field="policy.bindings.members.member_type",
                )
            resolved.append(PolicyMember(member_id, found[0]))
        if resolved:
            checked[role] = tuple(resolved)
    return checked


def _project(conn: Connection, organization_id: str, project_id: str, *, lock: bool = True) -> None:
    """The project must exist in the organization; a change locks its row, so concurrent
    changes of one project's roles take turns (the last-admin rule holds)."""
    repo = TenancyRepo(conn)
    project = repo.lock_project(project_id) if lock else repo.get_project(project_id)
    if project is None or project.organization_id != organization_id:
        raise not_found(f"Project {project_id[:64]} does not exist in organization.")


def _bucket(conn: Connection, actor: Actor, project_id: str, name: str) -> Bucket:
    if isinstance(actor, Caller):
        return bucket_or_404(conn, actor, name)
    bucket = BucketRepo(conn).get(project_id, name)
    if bucket is None:
        raise bucket_missing(name)
    return bucket


def _managed_bucket(conn: Connection, caller: Caller, name: str) -> Bucket:
    bucket = bucket_or_404(conn, caller, name)
    _require_bucket_admin(caller, bucket)
    return bucket


def _member(repo: GrantRepo, organization_id: str, ref: str) -> tuple[PolicyMember, str]:
    found = repo.find_member(organization_id, ref)
    if found is None:
        raise not_found(
            f"No service principal or user {ref[:128]!r} in this organization (give a principal "
            "id or client id, or a user's id or email)."
        )
    return found


def _require_admin(actor: Actor, organization_id: str, project_id: str) -> None:
    if not may_manage_access(actor, organization_id, project_id):
        raise permission_denied("Only the project's admins manage its roles.")


def _require_bucket_admin(actor: Actor, bucket: Bucket) -> None:
    if not may_manage_bucket_access(actor, bucket.id):
        raise permission_denied(
            f"Only the project's admins and the admins of bucket {bucket.name} manage its access."
        )


def _keep_an_admin(
    conn: Connection, repo: GrantRepo, project_id: str, member: PolicyMember
) -> None:
    """A project never loses its last enabled admin service principal this way."""
    if member.type is not MemberType.SERVICE_PRINCIPAL:
        return
    if repo.project_role(project_id, member) is not Role.ADMIN:
        return
    if TenancyRepo(conn).enabled_admins(project_id) <= 1:
        raise ApiError(
            Code.FAILED_PRECONDITION,
            "This is the project's last enabled admin service principal; make another "
            "principal admin first.",
        )
