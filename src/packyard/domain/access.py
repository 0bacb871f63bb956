"""Who may manage access (service principals, users): rules independent of storage."""

from __future__ import annotations

from packyard.domain.enums import Role
from packyard.domain.models import Caller, Operator
from packyard.domain.rules import validate_text
from packyard.errors import invalid


def may_manage_access(actor: Caller | Operator, organization_id: str, project_id: str) -> bool:
    """The operator manages every project; a principal only its own project, as admin."""
    if isinstance(actor, Operator):
        return True
    return (
        actor.role is Role.ADMIN
        and actor.organization_id == organization_id
        and actor.project_id == project_id
    )


def check_principal_name(value: str | None, *, field: str = "name") -> str:
    """A principal's name is shown as the author of its changes: 1-256 printable characters."""
    name = validate_text(value, field=field).strip()
    if not name:
        raise invalid(f"{field} is required.", field=field)
    return name
