"""People who sign in to the console, their roles per project and their browser sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from packyard.domain.enums import Role
from packyard.domain.models import Project, User, UserRecord, WebSession
from packyard.store.schema import projects, user_roles, users, web_sessions


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
        rows = self.conn.execute(
            select(users, user_roles.c.project_id, user_roles.c.role)
            .join(user_roles, user_roles.c.user_id == users.c.id)
            .where(user_roles.c.project_id == project_id)
            .order_by(users.c.email)
        )
        return [_record(r) for r in rows]

    def find(self, project_id: str, ref: str) -> UserRecord | None:
        """A user with a role on the project, by id or email."""
        row = self.conn.execute(
            select(users, user_roles.c.project_id, user_roles.c.role)
            .join(user_roles, user_roles.c.user_id == users.c.id)
            .where(
                user_roles.c.project_id == project_id,
                (users.c.id == ref) | (users.c.email == ref.strip().lower()),
            )
        ).first()
        return _record(row) if row else None

    def projects_of(self, user_id: str) -> list[tuple[Project, Role]]:
        rows = self.conn.execute(
            select(projects, user_roles.c.role)
            .join(user_roles, user_roles.c.project_id == projects.c.id)
            .where(user_roles.c.user_id == user_id)
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
                Role(r.role),
            )
            for r in rows
        ]

    def role_on(self, user_id: str, project_id: str) -> tuple[Role, str] | None:
        """The user's role on the project and the project's organization."""
        row = self.conn.execute(
            select(user_roles.c.role, projects.c.organization_id)
            .join(projects, projects.c.id == user_roles.c.project_id)
            .where(user_roles.c.user_id == user_id, user_roles.c.project_id == project_id)
        ).first()
        return (Role(row.role), row.organization_id) if row else None


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


def _record(row: Any) -> UserRecord:
    return UserRecord(user=_user(row), project_id=row.project_id, role=Role(row.role))
