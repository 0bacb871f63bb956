"""Organizations and projects: bootstrap and the resource-manager reads."""

from __future__ import annotations

from dataclasses import dataclass

from packyard.domain.enums import FeatureTier, Role
from packyard.domain.models import Organization, Project, Registry
from packyard.domain.rules import utcnow
from packyard.errors import invalid, not_found
from packyard.ids import new_id, new_uuid
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
        now = utcnow()
        org = Organization(id=new_uuid(), name=org_name, created_at=now)
        project = Project(
            id=new_uuid(), organization_id=org.id, name=project_name, description="", created_at=now
        )
        with self.store.write() as conn:
            repo = TenancyRepo(conn)
            repo.add_organization(org)
            repo.add_project(project)
            repo.add_registry(
                Registry(
                    id=new_id(),
                    organization_id=org.id,
                    project_id=project.id,
                    feature_tier=FeatureTier.PLUS,
                    activated=True,
                    created_at=now,
                    updated_at=now,
                )
            )
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
        return found[0]


__all__ = ["Role", "TenancyService", "Tenant"]
