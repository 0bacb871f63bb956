"""The lifecycle of service principals: list, create, change role, disable, enable, re-key,
delete.

A project's admins manage the principals of their project through the API; the operator
(``packyard principal …`` with the server's database) manages any. Each change is one
transaction and applies to running servers within the role cache's few seconds. A project
never loses its last enabled admin this way, so it cannot be locked out of itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from packyard.domain.access import check_principal_name, may_manage_access
from packyard.domain.enums import Role
from packyard.domain.events import AuditAction, Change
from packyard.domain.models import Caller, Operator, PrincipalRecord
from packyard.errors import ApiError, Code, not_found
from packyard.services.auth import AuthService, new_client_secret
from packyard.services.journal import record
from packyard.services.recording import simple
from packyard.store.engine import Store
from packyard.store.tenancy import TenancyRepo

Actor = Caller | Operator


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A principal and its new secret, which exists in clear only in this answer."""

    principal: PrincipalRecord
    client_secret: str


class PrincipalService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list(self, actor: Actor, organization_id: str, project_id: str) -> list[PrincipalRecord]:
        _authorize(actor, organization_id, project_id)
        with self.store.read() as conn:
            repo = TenancyRepo(conn)
            _project(repo, organization_id, project_id)
            return repo.project_principals(project_id)

    def get(self, actor: Actor, organization_id: str, project_id: str, ref: str) -> PrincipalRecord:
        _authorize(actor, organization_id, project_id)
        with self.store.read() as conn:
            repo = TenancyRepo(conn)
            _project(repo, organization_id, project_id)
            return _principal(repo, project_id, ref)

    def create(
        self, actor: Actor, organization_id: str, project_id: str, *, name: str, role: Role
    ) -> IssuedSecret:
        _authorize(actor, organization_id, project_id)
        name = check_principal_name(name)
        with self.store.write(project_id) as conn:
            repo = TenancyRepo(conn)
            _project(repo, organization_id, project_id)
            creds = AuthService.add_principal(
                repo, name=name, role=role, organization_id=organization_id, project_id=project_id
            )
            found = _principal(repo, project_id, creds.principal.id)
            record(
                conn,
                project_id,
                actor,
                _change(AuditAction.CREATE, "Created service principal", found),
            )
        return IssuedSecret(principal=found, client_secret=creds.client_secret)

    def update(
        self,
        actor: Actor,
        organization_id: str,
        project_id: str,
        ref: str,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
    ) -> PrincipalRecord:
        """Change a principal's role on the project and/or disable or enable it. Disabling
        ends the tokens it holds; enabling does not bring them back."""
        _authorize(actor, organization_id, project_id)
        with self.store.write(project_id) as conn:
            repo = TenancyRepo(conn)
            target = _changeable(repo, actor, organization_id, project_id, ref)
            stays_admin = (role or target.role) is Role.ADMIN and not (
                target.disabled if disabled is None else disabled
            )
            if target.role is Role.ADMIN and not target.disabled and not stays_admin:
                _keep_an_admin(repo, project_id, target)
            if role is not None and target.role is None:
                repo.bind_role(target.id, project_id, role)
            elif role is not None and role is not target.role:
                repo.set_role(target.id, project_id, role)
            if disabled is not None and disabled != target.disabled:
                repo.set_disabled(target.id, disabled)
            updated = _principal(repo, project_id, target.id)
            record(
                conn,
                project_id,
                actor,
                _change(AuditAction.UPDATE, "Updated service principal", updated),
            )
            return updated

    def rotate_secret(
        self,
        actor: Actor,
        organization_id: str,
        project_id: str,
        ref: str,
        *,
        revoke_tokens: bool = False,
    ) -> IssuedSecret:
        """A new secret; the old one stops working at once. Tokens issued with it keep working
        until they expire (at most an hour, so running pipelines finish), or stop at once with
        ``revoke_tokens`` (after a leak)."""
        _authorize(actor, organization_id, project_id)
        client_secret, secret_hash = new_client_secret()
        with self.store.write(project_id) as conn:
            repo = TenancyRepo(conn)
            target = _changeable(repo, actor, organization_id, project_id, ref)
            repo.set_secret(target.id, secret_hash, revoke_tokens=revoke_tokens)
            change = _change(
                AuditAction.UPDATE,
                "Rotated service principal secret",
                target,
                revoke_tokens=revoke_tokens,
            )
            record(conn, project_id, actor, change)
        return IssuedSecret(principal=target, client_secret=client_secret)

    def delete(self, actor: Actor, organization_id: str, project_id: str, ref: str) -> None:
        """Delete the principal. What it authored keeps its name as the author."""
        _authorize(actor, organization_id, project_id)
        with self.store.write(project_id) as conn:
            repo = TenancyRepo(conn)
            target = _changeable(repo, actor, organization_id, project_id, ref)
            if target.role is Role.ADMIN and not target.disabled:
                _keep_an_admin(repo, project_id, target)
            repo.delete_principal(target.id)
            record(
                conn,
                project_id,
                actor,
                _change(AuditAction.DELETE, "Deleted service principal", target),
            )


def _change(action: AuditAction, description: str, p: PrincipalRecord, **extra: object) -> Change:
    # Never the secret: who, which role, whether disabled.
    principal = {
        "id": p.id,
        "client_id": p.client_id,
        "name": p.name,
        "role": p.role.value if p.role is not None else "",
        "disabled": p.disabled,
        **extra,
    }
    return simple(action, description, principal=principal)


def _authorize(actor: Actor, organization_id: str, project_id: str) -> None:
    if not may_manage_access(actor, organization_id, project_id):
        raise ApiError(
            Code.PERMISSION_DENIED, "Only the project's admins can manage its service principals."
        )


def _project(repo: TenancyRepo, organization_id: str, project_id: str) -> None:
    project = repo.lock_project(project_id)
    if project is None or project.organization_id != organization_id:
        raise not_found(f"Project {project_id[:64]} does not exist in organization.")


def _principal(repo: TenancyRepo, project_id: str, ref: str) -> PrincipalRecord:
    found = repo.find_principal(project_id, ref)
    if found is None:
        raise not_found(
            f"Service principal {ref[:128]} has no role or bucket grant on this project."
        )
    return found


def _changeable(
    repo: TenancyRepo, actor: Actor, organization_id: str, project_id: str, ref: str
) -> PrincipalRecord:
    """The principal to change, with the project row locked (concurrent changes of one
    project's principals take turns, so two of them cannot remove both last admins)."""
    _project(repo, organization_id, project_id)
    target = _principal(repo, project_id, ref)
    if isinstance(actor, Caller) and repo.bound_projects(target.id) != [project_id]:
        raise ApiError(
            Code.PERMISSION_DENIED,
            "This service principal also has roles on other projects; the operator manages it.",
        )
    return target


def _keep_an_admin(repo: TenancyRepo, project_id: str, leaving: PrincipalRecord) -> None:
    if repo.enabled_admins(project_id) <= 1:
        raise ApiError(
            Code.FAILED_PRECONDITION,
            f"{leaving.name} is the project's last enabled admin; make another principal "
            "admin first.",
        )
