"""People who sign in to the console, their roles per project and their browser sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, and_, func, literal, select, update

from packyard.domain.enums import Role
from packyard.domain.models import Project, User, UserRecord, WebSession
from packyard.store.grants import highest_roles
from packyard.store.schema import (
    bucket_grants,
    buckets,
    projects,
    user_roles,
    users,
    web_sessions,
)


class UserRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def count(self) -> int:
        total: int = self.conn.execute(select(func.count()).select_from(users)).scalar_one()
        return total

    def add(self, user: User, password_hash: str | None) -> None:
        self.conn.execute(
            users.insert().values(
                id=user.id,
                email=user.email,
                password_hash=password_hash,
                disabled=user.disabled,
                created_at=user.created_at,
            )
        )

    def by_email(self, email: str) -> tuple[User, str | None] | None:
        row = self.conn.execute(select(users).where(users.c.email == email)).first()
        return (_user(row), row.password_hash) if row else None

    def set_password(self, user_id: str, password_hash: str) -> None:
        self.conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    def set_disabled(self, user_id: str, disabled: bool) -> None:
        self.conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))

    def bind_role(self, user_id: str, project_id: str, role: Role) -> None:
        self.conn.execute(
            user_roles.insert().values(user_id=user_id, project_id=project_id, role=role.value)
        )

    def set_role(self, user_id: str, project_id: str, role: Role) -> None:
        self.conn.execute(
            update(user_roles)
            .where(user_roles.c.user_id == user_id, user_roles.c.project_id == project_id)
            .values(role=role.value)
        )

    def project_users(self, project_id: str) -> list[UserRecord]:
        """The users with a role or a bucket grant on the project (role ``None``: grants only)."""
        rows = self.conn.execute(_record_query(project_id).order_by(users.c.email))
        return [_record(r) for r in rows]

    def find(self, project_id: str, ref: str) -> UserRecord | None:
        """A user with a role or a bucket grant on the project, by id or email."""
        row = self.conn.execute(
            _record_query(project_id).where(
                (users.c.id == ref) | (users.c.email == ref.strip().lower())
            )
        ).first()
        return _record(row) if row else None

    def projects_of(self, user_id: str) -> list[tuple[Project, Role | None]]:
        """The projects the user holds a role (or, role ``None``, only bucket grants) on."""
        granted = (
            select(buckets.c.project_id)
            .join(bucket_grants, bucket_grants.c.bucket_id == buckets.c.id)
            .where(bucket_grants.c.user_id == user_id)
        )
        rows = self.conn.execute(
            select(projects, user_roles.c.role)
            .outerjoin(
                user_roles,
                and_(user_roles.c.project_id == projects.c.id, user_roles.c.user_id == user_id),
            )
            .where(user_roles.c.user_id.is_not(None) | projects.c.id.in_(granted))
            .order_by(projects.c.created_at, projects.c.id)
        )
        return [
            (
                Project(
                    id=r.id,
                    organization_id=r.organization_id,
                    name=r.name,
                    description=r.description,
                    created_at=r.created_at,
                ),
                Role(r.role) if r.role is not None else None,
            )
            for r in rows
        ]

    def access_on(
        self, user_id: str, project_id: str
    ) -> tuple[str, Role | None, dict[str, Role]] | None:
        """The project's organization, the user's role on the project and grants on its
        buckets, in one statement; ``None`` when it holds neither there."""
        grant = bucket_grants.join(
            buckets,
            and_(buckets.c.id == bucket_grants.c.bucket_id, buckets.c.project_id == project_id),
        )
        rows = self.conn.execute(
            select(
                projects.c.organization_id,
                user_roles.c.role,
                bucket_grants.c.bucket_id,
                bucket_grants.c.role.label("bucket_role"),
            )
            .select_from(projects)
            .outerjoin(
                user_roles,
                and_(user_roles.c.project_id == projects.c.id, user_roles.c.user_id == user_id),
            )
            .outerjoin(grant, bucket_grants.c.user_id == user_id)
            .where(projects.c.id == project_id)
        ).all()
        if not rows:
            return None
        granted = highest_roles((r.bucket_id, r.bucket_role) for r in rows)
        role = Role(rows[0].role) if rows[0].role is not None else None
        if role is None and not granted:
            return None
        return rows[0].organization_id, role, granted


class SessionRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, session_id: str, user_id: str, csrf_token: str, now: datetime) -> None:
        self.conn.execute(
            web_sessions.insert().values(
                id=session_id,
                user_id=user_id,
                csrf_token=csrf_token,
                created_at=now,
                last_seen_at=now,
            )
        )

    def get(self, session_id: str) -> WebSession | None:
        """The session of an enabled user."""
        row = self.conn.execute(
            select(
                web_sessions.c.csrf_token,
                web_sessions.c.created_at.label("session_created_at"),
                web_sessions.c.last_seen_at,
                users,
            )
            .join(users, users.c.id == web_sessions.c.user_id)
            .where(web_sessions.c.id == session_id, users.c.disabled.is_(False))
        ).first()
        if row is None:
            return None
        return WebSession(
            user=_user(row),
            csrf_token=row.csrf_token,
            created_at=row.session_created_at,
            last_seen_at=row.last_seen_at,
        )

    def touch(self, session_id: str, now: datetime) -> None:
        self.conn.execute(
            update(web_sessions).where(web_sessions.c.id == session_id).values(last_seen_at=now)
        )

    def delete(self, session_id: str) -> None:
        self.conn.execute(web_sessions.delete().where(web_sessions.c.id == session_id))

    def delete_for_user(self, user_id: str) -> None:
        self.conn.execute(web_sessions.delete().where(web_sessions.c.user_id == user_id))

    def delete_stale(self, created_before: datetime, seen_before: datetime) -> None:
        self.conn.execute(
            web_sessions.delete().where(
                (web_sessions.c.created_at < created_before)
                | (web_sessions.c.last_seen_at < seen_before)
            )
        )


def _user(row: Any) -> User:
    return User(id=row.id, email=row.email, disabled=row.disabled, created_at=row.created_at)


def _record_query(project_id: str) -> Any:
    granted = (
        select(bucket_grants.c.user_id)
        .join(buckets, buckets.c.id == bucket_grants.c.bucket_id)
        .where(buckets.c.project_id == project_id, bucket_grants.c.user_id.is_not(None))
    )
    return (
        select(users, literal(project_id, String).label("project_id"), user_roles.c.role)
        .outerjoin(
            user_roles,
            and_(user_roles.c.user_id == users.c.id, user_roles.c.project_id == project_id),
        )
        .where(user_roles.c.user_id.is_not(None) | users.c.id.in_(granted))
    )


def _record(row: Any) -> UserRecord:
    role = Role(row.role) if row.role is not None else None
    return UserRecord(user=_user(row), project_id=row.project_id, role=role)
