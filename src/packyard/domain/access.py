"""Who may do what: the access rules, independent of storage and wire.

A principal (or console user) holds at most one role on a project and any number of
roles on single buckets of it (*bucket grants*). Grants are additive, as in HCP: on a
bucket the higher of the project role and the bucket grant applies. Then:

- ``viewer`` reads the bucket; ``contributor`` and ``admin`` also push to it, manage its
  channels, revoke and restore its versions, and see its restricted channels.
- Creating or deleting buckets, the registry and the run task are project changes: only a
  project ``contributor`` or ``admin`` makes them.
- A caller with no project role sees only the buckets it holds grants on; other buckets are
  absent from every read, as if they did not exist.
- Project admins manage every grant of the project; a bucket ``admin`` manages the grants of
  that bucket. Service principals and users are managed by project admins only.
"""

from __future__ import annotations

from packyard.domain.enums import Role
from packyard.domain.models import Caller, Operator
from packyard.domain.rules import validate_text
from packyard.errors import invalid

RestrictedScope = bool | frozenset[str]
"""Whose restricted channels a read shows: every bucket's (``True``), none (``False``), or
those of the buckets in the set."""


def bucket_role(caller: Caller, bucket_id: str) -> Role | None:
    """The role that applies to ``caller`` on one bucket: the higher of its project role and
    its grant on the bucket (``None``: the bucket is invisible to it)."""
    granted = caller.bucket_roles.get(bucket_id)
    if caller.role is None or (granted is not None and granted.rank > caller.role.rank):
        return granted
    return caller.role


def can_view_bucket(caller: Caller, bucket_id: str) -> bool:
    return bucket_role(caller, bucket_id) is not None


def can_write_bucket(caller: Caller, bucket_id: str) -> bool:
    role = bucket_role(caller, bucket_id)
    return role is not None and role.can_write


def visible_buckets(caller: Caller) -> frozenset[str] | None:
    """The ids of the buckets ``caller`` may see; ``None`` when it sees every bucket."""
    return None if caller.role is not None else frozenset(caller.bucket_roles)


def writable_buckets(caller: Caller) -> RestrictedScope:
    """The buckets ``caller`` may write to, in the form reads filter restricted channels by."""
    if caller.can_write:
        return True
    granted = frozenset(b for b, role in caller.bucket_roles.items() if role.can_write)
    return granted or False


ViewKey = tuple[frozenset[str] | None, RestrictedScope]


def view_key(caller: Caller) -> ViewKey:
    """Everything a read's answer depends on about its caller: two callers with the same key
    are shown exactly the same (the response cache keys on it)."""
    return visible_buckets(caller), writable_buckets(caller)


def may_manage_access(actor: Caller | Operator, organization_id: str, project_id: str) -> bool:
    """The operator manages every project; a principal only its own project, as admin."""
    if isinstance(actor, Operator):
        return True
    return (
        actor.role is Role.ADMIN
        and actor.organization_id == organization_id
        and actor.project_id == project_id
    )


def may_manage_bucket_access(actor: Caller | Operator, bucket_id: str) -> bool:
    """Project admins (and the operator) manage every bucket's grants, a bucket admin its own."""
    if isinstance(actor, Operator):
        return True
    return bucket_role(actor, bucket_id) is Role.ADMIN


def check_principal_name(value: str | None, *, field: str = "name") -> str:
    """A principal's name is shown as the author of its changes: 1-256 printable characters."""
    name = validate_text(value, field=field).strip()
    if not name:
        raise invalid(f"{field} is required.", field=field)
    return name
