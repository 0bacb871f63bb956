"""Organizations and projects: bootstrap and the resource-manager reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from packyard.domain.access import check_principal_name
from packyard.domain.enums import FeatureTier, Role
from packyard.domain.models import Organization, Project, Registry
from packyard.domain.rules import utcnow, validate_description, validate_text
from packyard.errors import invalid, not_found
from packyard.ids import new_id, new_uuid
from packyard.services.auth import AuthService, NewCredentials
from packyard.store.engine import Store
from packyard.store.tenancy import TenancyRepo


@dataclass(frozen=True, slots=True)
class Tenant:
    organization: Organization
    project: Project


class TenancyService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def default_tenant(self) -> Tenant | None:
        with self.store.read() as conn:
            repo = TenancyRepo(conn)
            project = repo.first_project()
            if project is None:
                return None
            org = repo.get_organization(project.organization_id)
        assert org is not None
        return Tenant(organization=org, project=project)

    def create_tenant(self, org_name: str, project_name: str) -> Tenant:
        """A new organization with one project and its registry."""
        with self.store.write() as conn:
            return self._add_tenant(TenancyRepo(conn), org_name, project_name)

    def create_organization(
        self, name: str, *, project_name: str, admin_name: str
    ) -> tuple[Tenant, NewCredentials]:
        """A new organization with one project, its registry and an admin principal, in one
        transaction."""
        name, project_name = _name(name, "name"), _name(project_name, "project name")
        admin_name = check_principal_name(admin_name, field="admin name")
        with self.store.write() as conn:
            repo = TenancyRepo(conn)
            tenant = self._add_tenant(repo, name, project_name)
            admin = AuthService.add_principal(
                repo,
                name=admin_name,
                role=Role.ADMIN,
                organization_id=tenant.organization.id,
                project_id=tenant.project.id,
            )
        return tenant, admin

    def create_project(
        self, organization_id: str, name: str, *, admin_name: str, description: str = ""
    ) -> tuple[Tenant, NewCredentials]:
        """A new project of an organization, with its registry and an admin principal."""
        name = _name(name, "name")
        description = validate_description(description)
        admin_name = check_principal_name(admin_name, field="admin name")
        with self.store.write() as conn:
            repo = TenancyRepo(conn)
            org = repo.get_organization(organization_id)
            if org is None:
                raise not_found(f"Organization {organization_id[:64]} does not exist.")
            project = _add_project(repo, org.id, name, description, utcnow())
            admin = AuthService.add_principal(
                repo,
                name=admin_name,
                role=Role.ADMIN,
                organization_id=org.id,
                project_id=project.id,
            )
        return Tenant(organization=org, project=project), admin

    def all_organizations(self) -> list[Organization]:
        with self.store.read() as conn:
            return TenancyRepo(conn).all_organizations()

    def all_projects(self, organization_id: str | None = None) -> list[Project]:
        with self.store.read() as conn:
            return TenancyRepo(conn).all_projects(organization_id)

    @staticmethod
    def _add_tenant(repo: TenancyRepo, org_name: str, project_name: str) -> Tenant:
        now = utcnow()
        org = Organization(id=new_uuid(), name=org_name, created_at=now)
        repo.add_organization(org)
        project = _add_project(repo, org.id, project_name, "", now)
        return Tenant(organization=org, project=project)

    def list_organizations(self, principal_id: str) -> list[Organization]:
        with self.store.read() as conn:
            return TenancyRepo(conn).list_organizations(principal_id)

    def list_projects(
        self, principal_id: str, scope_type: str | None, scope_id: str | None
    ) -> list[Project]:
        if scope_type not in (None, "", "ORGANIZATION"):
            raise invalid("scope.type must be ORGANIZATION.", field="scope.type")
        if not scope_id:
            raise invalid("scope.id is required.", field="scope.id")
        with self.store.read() as conn:
            return TenancyRepo(conn).list_projects(principal_id, scope_id)

    def get_project(self, principal_id: str, project_id: str) -> Project:
        with self.store.read() as conn:
            found = TenancyRepo(conn).get_project_for(principal_id, project_id)
        if found is None:
            raise not_found(f"Project {project_id[:64]} does not exist or is not accessible.")
        return found


def _add_project(
    repo: TenancyRepo, organization_id: str, name: str, description: str, now: datetime
) -> Project:
    project = Project(
        id=new_uuid(),
        organization_id=organization_id,
        name=name,
        description=description,
        created_at=now,
    )
    repo.add_project(project)
    repo.add_registry(
        Registry(
            id=new_id(),
            organization_id=organization_id,
            project_id=project.id,
            feature_tier=FeatureTier.PLUS,
            activated=True,
            created_at=now,
            updated_at=now,
        )
    )
    return project


def _name(value: str, field: str) -> str:
    name = validate_text(value, field=field).strip()
    if not name:
        raise invalid(f"The {field} is required.", field=field)
    return name


__all__ = ["Role", "TenancyService", "Tenant"]
