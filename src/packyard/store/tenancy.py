"""Organizations, projects, principals, role bindings, registries and settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, Connection, and_, func, literal, select, union, update

from packyard.domain.enums import FeatureTier, Role, RunTaskBehaviour
from packyard.domain.models import (
    Organization,
    Principal,
    PrincipalRecord,
    Project,
    Registry,
    RunTaskSettings,
    SigningKey,
)
from packyard.store.grants import highest_roles
from packyard.store.schema import (
    ID,
    bucket_grants,
    buckets,
    organizations,
    principals,
    projects,
    registries,
    role_bindings,
    run_task_configs,
    settings,
    signing_keys,
)


@dataclass(frozen=True, slots=True)
class CallerAccess:
    """What authorizing a principal on one project needs from storage."""

    name: str
    organization_id: str
    token_version: int
    role: Role | None
    bucket_roles: dict[str, Role]


class SettingsRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, key: str) -> str | None:
        return self.conn.execute(
            select(settings.c.value).where(settings.c.key == key)
        ).scalar_one_or_none()

    def put_if_absent(self, key: str, value: str) -> str:
        """Store ``value`` unless another process won the race; return what is stored."""
        existing = self.get(key)
        if existing is not None:
            return existing
        self.conn.execute(settings.insert().values(key=key, value=value))
        return value

    def replace(self, key: str, value: str) -> None:
        """Store ``value`` whether or not one was stored."""
        self.conn.execute(settings.delete().where(settings.c.key == key))
        self.conn.execute(settings.insert().values(key=key, value=value))


class SigningKeyRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def all(self) -> list[SigningKey]:
        rows = self.conn.execute(
            select(signing_keys).order_by(signing_keys.c.created_at, signing_keys.c.id)
        )
        return [
            SigningKey(
                id=r.id,
                secret=bytes.fromhex(r.secret),
                created_at=r.created_at,
                retire_at=r.retire_at,
            )
            for r in rows
        ]

    def add(self, key: SigningKey) -> None:
        self.conn.execute(
            signing_keys.insert().values(
                id=key.id,
                secret=key.secret.hex(),
                created_at=key.created_at,
                retire_at=key.retire_at,
            )
        )

    def retire_all_but(self, key_id: str, at: datetime) -> int:
        """Retire every other key at ``at`` (keys retiring earlier keep their time)."""
        result = self.conn.execute(
            update(signing_keys)
            .where(
                signing_keys.c.id != key_id,
                (signing_keys.c.retire_at.is_(None)) | (signing_keys.c.retire_at > at),
            )
            .values(retire_at=at)
        )
        return result.rowcount

    def forget_retired_before(self, at: datetime) -> None:
        self.conn.execute(signing_keys.delete().where(signing_keys.c.retire_at < at))


class TenancyRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # organizations and projects
    def add_organization(self, org: Organization) -> None:
        self.conn.execute(
            organizations.insert().values(id=org.id, name=org.name, created_at=org.created_at)
        )

    def add_project(self, project: Project) -> None:
        self.conn.execute(
            projects.insert().values(
                id=project.id,
                organization_id=project.organization_id,
                name=project.name,
                description=project.description,
                created_at=project.created_at,
            )
        )

    def get_organization(self, organization_id: str) -> Organization | None:
        row = self.conn.execute(
            select(organizations).where(organizations.c.id == organization_id)
        ).first()
        return Organization(id=row.id, name=row.name, created_at=row.created_at) if row else None

    def list_organizations(self, principal_id: str) -> list[Organization]:
        rows = self.conn.execute(
            select(organizations)
            .join(principals, principals.c.organization_id == organizations.c.id)
            .where(principals.c.id == principal_id)
            .order_by(organizations.c.created_at, organizations.c.id)
        )
        return [Organization(id=r.id, name=r.name, created_at=r.created_at) for r in rows]

    def list_projects(self, principal_id: str, organization_id: str) -> list[Project]:
        """The organization's projects the principal holds a role or a bucket grant on."""
        rows = self.conn.execute(
            select(projects)
            .where(
                projects.c.organization_id == organization_id,
                projects.c.id.in_(_member_projects(principal_id)),
            )
            .order_by(projects.c.created_at, projects.c.id)
        )
        return [_project(r) for r in rows]

    def get_project_for(self, principal_id: str, project_id: str) -> Project | None:
        row = self.conn.execute(
            select(projects).where(
                projects.c.id == project_id, projects.c.id.in_(_member_projects(principal_id))
            )
        ).first()
        return _project(row) if row else None

    def first_project(self) -> Project | None:
        row = self.conn.execute(
            select(projects).order_by(projects.c.created_at, projects.c.id).limit(1)
        ).first()
        return _project(row) if row else None

    def get_project(self, project_id: str) -> Project | None:
        row = self.conn.execute(select(projects).where(projects.c.id == project_id)).first()
        return _project(row) if row else None

    def lock_project(self, project_id: str) -> Project | None:
        """The project, its row locked until the transaction ends (PostgreSQL)."""
        row = self.conn.execute(
            select(projects).where(projects.c.id == project_id).with_for_update()
        ).first()
        return _project(row) if row else None

    def all_organizations(self) -> list[Organization]:
        rows = self.conn.execute(
            select(organizations).order_by(organizations.c.created_at, organizations.c.id)
        )
        return [Organization(id=r.id, name=r.name, created_at=r.created_at) for r in rows]

    def all_projects(self, organization_id: str | None = None) -> list[Project]:
        query = select(projects).order_by(projects.c.created_at, projects.c.id)
        if organization_id is not None:
            query = query.where(projects.c.organization_id == organization_id)
        return [_project(r) for r in self.conn.execute(query)]

    # principals
    def add_principal(self, principal: Principal, secret_hash: str, created_at: datetime) -> None:
        self.conn.execute(
            principals.insert().values(
                id=principal.id,
                client_id=principal.client_id,
                secret_hash=secret_hash,
                name=principal.name,
                organization_id=principal.organization_id,
                created_at=created_at,
                disabled=False,
            )
        )

    def bind_role(self, principal_id: str, project_id: str, role: Role) -> None:
        self.conn.execute(
            role_bindings.insert().values(
                principal_id=principal_id, project_id=project_id, role=role.value
            )
        )

    def principal_by_client_id(self, client_id: str) -> tuple[Principal, str] | None:
        row = self.conn.execute(
            select(principals).where(
                principals.c.client_id == client_id, principals.c.disabled.is_(False)
            )
        ).first()
        if row is None:
            return None
        return _principal(row), row.secret_hash

    def caller_access(
        self, principal_id: str, organization_id: str | None, project_id: str
    ) -> CallerAccess | None:
        """The enabled principal's name, token version, role on the project and grants on its
        buckets, in one statement; ``None`` when it holds neither a role nor a grant there
        (or the project is not in ``organization_id``, when given)."""
        in_project = projects.c.id == project_id
        if organization_id is not None:
            in_project = and_(in_project, projects.c.organization_id == organization_id)
        grant = bucket_grants.join(
            buckets,
            and_(buckets.c.id == bucket_grants.c.bucket_id, buckets.c.project_id == project_id),
        )
        rows = self.conn.execute(
            select(
                principals.c.name,
                principals.c.token_version,
                projects.c.organization_id,
                role_bindings.c.role,
                bucket_grants.c.bucket_id,
                bucket_grants.c.role.label("bucket_role"),
            )
            .select_from(principals)
            .join(projects, in_project)
            .outerjoin(
                role_bindings,
                and_(
                    role_bindings.c.principal_id == principals.c.id,
                    role_bindings.c.project_id == projects.c.id,
                ),
            )
            .outerjoin(grant, bucket_grants.c.principal_id == principals.c.id)
            .where(principals.c.id == principal_id, principals.c.disabled.is_(False))
        ).all()
        if not rows:
            return None
        first = rows[0]
        granted = highest_roles((r.bucket_id, r.bucket_role) for r in rows)
        if first.role is None and not granted:
            return None
        return CallerAccess(
            name=first.name,
            organization_id=first.organization_id,
            token_version=first.token_version,
            role=Role(first.role) if first.role is not None else None,
            bucket_roles=granted,
        )

    def principal_organization(self, principal_id: str) -> str | None:
        """The organization of an enabled principal."""
        value: str | None = self.conn.execute(
            select(principals.c.organization_id).where(
                principals.c.id == principal_id, principals.c.disabled.is_(False)
            )
        ).scalar_one_or_none()
        return value

    def token_version(self, principal_id: str) -> int | None:
        """The principal's token version; ``None`` if it is gone or disabled."""
        value: int | None = self.conn.execute(
            select(principals.c.token_version).where(
                principals.c.id == principal_id, principals.c.disabled.is_(False)
            )
        ).scalar_one_or_none()
        return value

    # principal lifecycle
    def project_principals(self, project_id: str) -> list[PrincipalRecord]:
        rows = self.conn.execute(
            _record_query(project_id).order_by(principals.c.created_at, principals.c.id)
        )
        return [_record(r) for r in rows]

    def find_principal(self, project_id: str, ref: str) -> PrincipalRecord | None:
        """A principal with a role or a bucket grant on the project, by id or client id."""
        row = self.conn.execute(
            _record_query(project_id).where(
                (principals.c.id == ref) | (principals.c.client_id == ref),
            )
        ).first()
        return _record(row) if row else None

    def bound_projects(self, principal_id: str) -> list[str]:
        """The projects the principal holds a role or a bucket grant on."""
        rows = self.conn.execute(_member_projects(principal_id))
        return sorted(r[0] for r in rows)

    def enabled_admins(self, project_id: str) -> int:
        count: int = self.conn.execute(
            select(func.count())
            .select_from(role_bindings.join(principals))
            .where(
                role_bindings.c.project_id == project_id,
                role_bindings.c.role == Role.ADMIN.value,
                principals.c.disabled.is_(False),
            )
        ).scalar_one()
        return count

    def set_role(self, principal_id: str, project_id: str, role: Role) -> None:
        self.conn.execute(
            update(role_bindings)
            .where(
                role_bindings.c.principal_id == principal_id,
                role_bindings.c.project_id == project_id,
            )
            .values(role=role.value)
        )

    def set_disabled(self, principal_id: str, disabled: bool) -> None:
        """Disabling also ends every token issued so far (enabling does not revive them)."""
        values: dict[str, Any] = {"disabled": disabled}
        if disabled:
            values["token_version"] = principals.c.token_version + 1
        self.conn.execute(update(principals).where(principals.c.id == principal_id).values(values))

    def set_secret(self, principal_id: str, secret_hash: str, *, revoke_tokens: bool) -> None:
        """A new secret; with ``revoke_tokens`` the tokens issued so far stop working too."""
        values: dict[str, Any] = {"secret_hash": secret_hash}
        if revoke_tokens:
            values["token_version"] = principals.c.token_version + 1
        self.conn.execute(update(principals).where(principals.c.id == principal_id).values(values))

    def rehash_secret(self, principal_id: str, secret_hash: str) -> None:
        """The same secret under a newer hash scheme; issued tokens stay valid."""
        self.conn.execute(
            update(principals)
            .where(principals.c.id == principal_id)
            .values(secret_hash=secret_hash)
        )

    def delete_principal(self, principal_id: str) -> None:
        self.conn.execute(principals.delete().where(principals.c.id == principal_id))

    # registries
    def get_registry(self, project_id: str) -> Registry | None:
        row = self.conn.execute(
            select(
                registries,
                projects.c.organization_id,
                run_task_configs.c.api_id.label("run_task_api_id"),
                run_task_configs.c.on_untracked_image.label("run_task_on_untracked_image"),
            )
            .join(projects, projects.c.id == registries.c.project_id)
            .outerjoin(run_task_configs, run_task_configs.c.project_id == registries.c.project_id)
            .where(registries.c.project_id == project_id)
        ).first()
        return _registry(row) if row else None

    def add_registry(self, registry: Registry) -> None:
        self.conn.execute(
            registries.insert().values(
                id=registry.id,
                project_id=registry.project_id,
                feature_tier=registry.feature_tier.value,
                activated=registry.activated,
                created_at=registry.created_at,
                updated_at=registry.updated_at,
            )
        )

    def update_registry(self, project_id: str, **values: Any) -> None:
        self.conn.execute(
            update(registries).where(registries.c.project_id == project_id).values(**values)
        )

    def delete_registry(self, project_id: str) -> None:
        self.conn.execute(registries.delete().where(registries.c.project_id == project_id))


def _project(row: Any) -> Project:
    return Project(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
    )


def _principal(row: Any) -> Principal:
    return Principal(
        id=row.id,
        client_id=row.client_id,
        name=row.name,
        organization_id=row.organization_id,
        token_version=row.token_version,
    )


def _record_query(project_id: str) -> Any:
    """The principals with a role or a bucket grant on the project (role ``NULL``: grants
    only)."""
    return (
        select(
            principals.c.id,
            principals.c.client_id,
            principals.c.name,
            principals.c.organization_id,
            principals.c.disabled,
            principals.c.created_at,
            literal(project_id, ID).label("project_id"),
            role_bindings.c.role,
        )
        .outerjoin(
            role_bindings,
            and_(
                role_bindings.c.principal_id == principals.c.id,
                role_bindings.c.project_id == project_id,
            ),
        )
        .where(principals.c.id.in_(_project_members(project_id)))
    )


def _record(row: Any) -> PrincipalRecord:
    return PrincipalRecord(
        id=row.id,
        client_id=row.client_id,
        name=row.name,
        organization_id=row.organization_id,
        project_id=row.project_id,
        role=Role(row.role) if row.role is not None else None,
        disabled=row.disabled,
        created_at=row.created_at,
    )


def _registry(row: Any) -> Registry:
    return Registry(
        id=row.id,
        organization_id=row.organization_id,
        project_id=row.project_id,
        feature_tier=FeatureTier(row.feature_tier),
        activated=row.activated,
        created_at=row.created_at,
        updated_at=row.updated_at,
        run_task=(
            RunTaskSettings(row.run_task_api_id, RunTaskBehaviour(row.run_task_on_untracked_image))
            if row.run_task_api_id is not None
            else None
        ),
    )


def _project_members(project_id: str) -> CompoundSelect[Any]:
    """The ids of the principals holding a role or a bucket grant on a project."""
    return union(
        select(role_bindings.c.principal_id).where(role_bindings.c.project_id == project_id),
        select(bucket_grants.c.principal_id)
        .join(buckets, buckets.c.id == bucket_grants.c.bucket_id)
        .where(buckets.c.project_id == project_id, bucket_grants.c.principal_id.is_not(None)),
    )


def _member_projects(principal_id: str) -> CompoundSelect[Any]:
    """The ids of the projects a principal holds a role or a bucket grant on."""
    return union(
        select(role_bindings.c.project_id).where(role_bindings.c.principal_id == principal_id),
        select(buckets.c.project_id)
        .join(bucket_grants, bucket_grants.c.bucket_id == buckets.c.id)
        .where(bucket_grants.c.principal_id == principal_id),
    )
