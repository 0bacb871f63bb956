"""Bucket grants (roles on single buckets) and each bucket's IAM policy etag."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, String, Table, delete, literal, select, union, update

from packyard.domain.enums import MemberType, Role
from packyard.domain.models import BucketPolicy, PolicyMember
from packyard.store.schema import (
    bucket_grants,
    bucket_policies,
    buckets,
    principals,
    projects,
    role_bindings,
    user_roles,
    users,
)


def highest_roles(grants: Iterable[tuple[str | None, str | None]]) -> dict[str, Role]:
    """(bucket id, role) rows → each bucket's highest role (rows without a bucket skipped)."""
    highest: dict[str, Role] = {}
    for bucket_id, value in grants:
        if bucket_id is None or value is None:
            continue
        role = Role(value)
        if bucket_id not in highest or role.rank > highest[bucket_id].rank:
            highest[bucket_id] = role
    return highest


class GrantRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def roles_of(self, member_id: str, project_id: str) -> dict[str, Role]:
        """The member's grants on the project's buckets, by bucket id."""
        rows = self.conn.execute(
            select(bucket_grants.c.bucket_id, bucket_grants.c.role)
            .join(buckets, buckets.c.id == bucket_grants.c.bucket_id)
            .where(bucket_grants.c.member_id == member_id, buckets.c.project_id == project_id)
        )
        return highest_roles((r.bucket_id, r.role) for r in rows)

    def policy(self, bucket_id: str) -> BucketPolicy:
        """The bucket's grants with the etag of their current state ("" if never set)."""
        etag = self.conn.execute(
            select(bucket_policies.c.etag).where(bucket_policies.c.bucket_id == bucket_id)
        ).scalar_one_or_none()
        rows = self.conn.execute(
            select(bucket_grants)
            .where(bucket_grants.c.bucket_id == bucket_id)
            .order_by(bucket_grants.c.role, bucket_grants.c.member_id)
        )
        bindings: dict[Role, list[PolicyMember]] = {}
        for r in rows:
            kind = MemberType.USER if r.user_id is not None else MemberType.SERVICE_PRINCIPAL
            bindings.setdefault(Role(r.role), []).append(PolicyMember(r.member_id, kind))
        return BucketPolicy(
            bucket_id=bucket_id,
            etag=etag or "",
            bindings={role: tuple(members) for role, members in bindings.items()},
        )

    def lock_etag(self, bucket_id: str) -> str:
        """The bucket's policy etag, its row locked until the transaction ends (PostgreSQL):
        concurrent changes of one bucket's grants take turns."""
        etag: str | None = self.conn.execute(
            select(bucket_policies.c.etag)
            .where(bucket_policies.c.bucket_id == bucket_id)
            .with_for_update()
        ).scalar_one_or_none()
        return etag or ""

    def replace(
        self,
        bucket_id: str,
        bindings: Mapping[Role, Iterable[PolicyMember]],
        *,
        etag: str,
        now: datetime,
    ) -> None:
        """Make ``bindings`` the bucket's grants, under a new ``etag``."""
        self.conn.execute(delete(bucket_grants).where(bucket_grants.c.bucket_id == bucket_id))
        rows = [
            {
                "bucket_id": bucket_id,
                "member_id": m.id,
                "principal_id": m.id if m.type is MemberType.SERVICE_PRINCIPAL else None,
                "user_id": m.id if m.type is MemberType.USER else None,
                "role": role.value,
            }
            for role, members in bindings.items()
            for m in members
        ]
        if rows:
            self.conn.execute(bucket_grants.insert(), rows)
        self.set_etag(bucket_id, etag, now)

    def set_etag(self, bucket_id: str, etag: str, now: datetime) -> None:
        changed = self.conn.execute(
            update(bucket_policies)
            .where(bucket_policies.c.bucket_id == bucket_id)
            .values(etag=etag, updated_at=now)
        ).rowcount
        if not changed:
            self.conn.execute(
                bucket_policies.insert().values(bucket_id=bucket_id, etag=etag, updated_at=now)
            )

    def project_grants(
        self, project_id: str, bucket_id: str | None = None
    ) -> list[tuple[str, str, PolicyMember, Role]]:
        """(bucket id, bucket name, member, role) of the project's grants, by bucket name."""
        query = (
            select(bucket_grants, buckets.c.name.label("bucket_name"))
            .join(buckets, buckets.c.id == bucket_grants.c.bucket_id)
            .where(buckets.c.project_id == project_id)
            .order_by(buckets.c.name, bucket_grants.c.role, bucket_grants.c.member_id)
        )
        if bucket_id is not None:
            query = query.where(bucket_grants.c.bucket_id == bucket_id)
        return [
            (
                r.bucket_id,
                r.bucket_name,
                PolicyMember(
                    r.member_id,
                    MemberType.USER if r.user_id is not None else MemberType.SERVICE_PRINCIPAL,
                ),
                Role(r.role),
            )
            for r in self.conn.execute(query)
        ]

    def organization_members(
        self, organization_id: str, ids: Iterable[str]
    ) -> dict[str, tuple[MemberType, str]]:
        """Of ``ids``, the service principals of the organization and the users with a role on
        one of its projects: id → (type, display name). One statement."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        service = select(
            principals.c.id, principals.c.name, literal(MemberType.SERVICE_PRINCIPAL.value, String)
        ).where(principals.c.organization_id == organization_id, principals.c.id.in_(wanted))
        kind = literal(MemberType.USER.value, String)
        with_role = (
            select(users.c.id, users.c.email, kind)
            .join(user_roles, user_roles.c.user_id == users.c.id)
            .join(projects, projects.c.id == user_roles.c.project_id)
            .where(projects.c.organization_id == organization_id, users.c.id.in_(wanted))
        )
        with_grant = (
            select(users.c.id, users.c.email, kind)
            .join(bucket_grants, bucket_grants.c.user_id == users.c.id)
            .join(buckets, buckets.c.id == bucket_grants.c.bucket_id)
            .join(projects, projects.c.id == buckets.c.project_id)
            .where(projects.c.organization_id == organization_id, users.c.id.in_(wanted))
        )
        found: dict[str, tuple[MemberType, str]] = {}
        for member_id, name, kind in self.conn.execute(union(service, with_role, with_grant)):
            found[member_id] = (MemberType(kind), name)
        return found

    # --- members and their project roles ----------------------------------------------

    def find_member(self, organization_id: str, ref: str) -> tuple[PolicyMember, str] | None:
        """A service principal of the organization (by id or client id) or a user (by id or
        email) with a role or grant in it, with its display name."""
        row = self.conn.execute(
            select(principals.c.id, principals.c.name).where(
                principals.c.organization_id == organization_id,
                (principals.c.id == ref) | (principals.c.client_id == ref),
            )
        ).first()
        if row is not None:
            return PolicyMember(row.id, MemberType.SERVICE_PRINCIPAL), row.name
        user_id = self.conn.execute(
            select(users.c.id).where((users.c.id == ref) | (users.c.email == ref.strip().lower()))
        ).scalar_one_or_none()
        if user_id is None:
            return None
        found = self.organization_members(organization_id, [user_id]).get(user_id)
        return (PolicyMember(user_id, MemberType.USER), found[1]) if found else None

    def project_roles(self, project_id: str) -> list[tuple[PolicyMember, str, Role]]:
        """Every principal's and user's role on the project: (member, name, role)."""
        service = select(
            principals.c.id,
            principals.c.name,
            literal(MemberType.SERVICE_PRINCIPAL.value, String),
            role_bindings.c.role,
        ).join(role_bindings, role_bindings.c.principal_id == principals.c.id)
        service = service.where(role_bindings.c.project_id == project_id)
        people = (
            select(
                users.c.id, users.c.email, literal(MemberType.USER.value, String), user_roles.c.role
            )
            .join(user_roles, user_roles.c.user_id == users.c.id)
            .where(user_roles.c.project_id == project_id)
        )
        return [
            (PolicyMember(member_id, MemberType(kind)), name, Role(role))
            for member_id, name, kind, role in self.conn.execute(union(service, people))
        ]

    def project_role(self, project_id: str, member: PolicyMember) -> Role | None:
        table, column = _project_role_table(member)
        value = self.conn.execute(
            select(table.c.role).where(column == member.id, table.c.project_id == project_id)
        ).scalar_one_or_none()
        return Role(value) if value is not None else None

    def set_project_role(self, project_id: str, member: PolicyMember, role: Role | None) -> None:
        """Give ``member`` ``role`` on the project, or take its project role away (``None``)."""
        table, column = _project_role_table(member)
        self.conn.execute(
            delete(table).where(column == member.id, table.c.project_id == project_id)
        )
        if role is not None:
            self.conn.execute(
                table.insert().values(
                    {column.key: member.id, "project_id": project_id, "role": role.value}
                )
            )


def _project_role_table(member: PolicyMember) -> tuple[Table, Column[Any]]:
    if member.type is MemberType.USER:
        return user_roles, user_roles.c.user_id
    return role_bindings, role_bindings.c.principal_id
