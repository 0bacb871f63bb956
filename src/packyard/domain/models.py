"""Domain objects: what the registry knows, independent of wire and storage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from packyard.domain.enums import (
    AncestryStatus,
    BuildStatus,
    FeatureTier,
    MemberType,
    RevocationType,
    Role,
    RunTaskBehaviour,
    TemplateType,
    VersionStatus,
)

MANAGED_CHANNEL = "latest"
MANAGED_AUTHOR = "HCP Packer"


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    organization_id: str
    name: str
    description: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    client_id: str
    name: str
    organization_id: str
    token_version: int = 1


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    """A service principal as its project's admins manage it (``role`` is ``None`` when it
    holds only grants on buckets of the project)."""

    id: str
    client_id: str
    name: str
    organization_id: str
    project_id: str
    role: Role | None
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in to the console. How they prove who they are (a password today,
    an identity provider later) is kept apart from who they are."""

    id: str
    email: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user with its role on one project, as the project's admins manage it (``None``
    when it holds only grants on buckets of the project)."""

    user: User
    project_id: str
    role: Role | None


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser. ``csrf_token`` must accompany every change it asks for."""

    user: User
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class Operator:
    """Whoever runs ``packyard`` commands with the server's database: may manage everything."""

    name: str = "operator"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A token signing key; tokens name it in their ``kid`` header."""

    id: str
    secret: bytes
    created_at: datetime
    retire_at: datetime | None

    def valid_at(self, now: datetime) -> bool:
        return self.retire_at is None or now < self.retire_at


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated principal (or console user) acting on one project.

    ``role`` is its role on the whole project (``None`` when it holds only bucket grants);
    ``bucket_roles`` its grants on single buckets of the project, by bucket id. What they
    allow is decided in :mod:`packyard.domain.access`.
    """

    principal_id: str
    name: str
    organization_id: str
    project_id: str
    role: Role | None
    bucket_roles: Mapping[str, Role] = field(default_factory=dict)
    person: bool = False  # a console user, not a service principal

    @property
    def can_write(self) -> bool:
        """Whether it may change the project itself (create buckets, the registry, the run
        task), which only a project role allows."""
        return self.role is not None and self.role.can_write


@dataclass(frozen=True, slots=True)
class RunTaskSettings:
    """A registry's image validation run task, without its HMAC key."""

    api_id: str
    on_untracked_image: RunTaskBehaviour


@dataclass(frozen=True, slots=True)
class Registry:
    id: str
    organization_id: str
    project_id: str
    feature_tier: FeatureTier
    activated: bool
    created_at: datetime
    updated_at: datetime
    run_task: RunTaskSettings | None = None


# Not frozen, like the other parts of a version: a frozen dataclass sets each field through
# object.__setattr__, which made an Artifact 3.5 times as dear to build (0.78 against 0.22 µs),
# and an uncached ListBuckets page builds 150 of them.
@dataclass(slots=True)
class Artifact:
    id: str
    external_identifier: str
    region: str
    created_at: datetime


@dataclass(slots=True)
class Build:
    id: str
    version_id: str
    component_type: str
    packer_run_uuid: str
    platform: str
    status: BuildStatus
    source_external_identifier: str
    labels: dict[str, str]
    metadata: dict[str, Any] | None
    parent_version_id: str | None
    parent_channel_id: str | None
    created_at: datetime
    updated_at: datetime
    artifacts: list[Artifact] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RevokedAncestor:
    version_id: str
    bucket_name: str
    version_name: str
    version_fingerprint: str
    bucket_id: str = ""


@dataclass(slots=True)
class Version:
    id: str
    bucket_id: str
    bucket_name: str
    fingerprint: str
    number: int | None
    template_type: TemplateType
    author_id: str
    created_at: datetime
    updated_at: datetime
    revoke_at: datetime | None = None
    revocation_message: str = ""
    revocation_author: str = ""
    revocation_type: RevocationType | None = None
    revocation_inherited_from: RevokedAncestor | None = None
    builds: list[Build] = field(default_factory=list)
    has_descendants: bool = False
    parents_status: AncestryStatus | None = None

    @property
    def complete(self) -> bool:
        return self.number is not None

    @property
    def name(self) -> str:
        return f"v{self.number or 0}"


@dataclass(slots=True)
class Bucket:
    id: str
    project_id: str
    name: str
    description: str
    labels: dict[str, str]
    version_count: int
    latest_version_id: str | None
    created_at: datetime
    updated_at: datetime
    latest_version: Version | None = None
    parents_status: AncestryStatus | None = None
    children_status: AncestryStatus | None = None


@dataclass(slots=True)
class Channel:
    id: str
    bucket_id: str
    bucket_name: str
    name: str
    managed: bool
    restricted: bool
    version_id: str | None
    author_id: str
    created_at: datetime
    updated_at: datetime
    version: Version | None = None


@dataclass(frozen=True, slots=True)
class ChannelAssignment:
    id: str
    channel_id: str
    version_id: str | None
    author_id: str
    assigned_at: datetime


@dataclass(frozen=True, slots=True)
class VersionStatusInput:
    """What the status of a version is derived from."""

    complete: bool
    build_statuses: tuple[BuildStatus, ...]
    revoke_at: datetime | None


__all__ = [
    "MANAGED_AUTHOR",
    "MANAGED_CHANNEL",
    "Artifact",
    "Bucket",
    "Build",
    "Caller",
    "Channel",
    "ChannelAssignment",
    "Operator",
    "Organization",
    "Principal",
    "PrincipalRecord",
    "Project",
    "Registry",
    "RevokedAncestor",
    "SigningKey",
    "User",
    "UserRecord",
    "Version",
    "VersionStatus",
    "VersionStatusInput",
    "WebSession",
]


@dataclass(frozen=True, slots=True)
class PolicyMember:
    """A principal or user named in a bucket's IAM policy."""

    id: str
    type: MemberType


@dataclass(frozen=True, slots=True)
class BucketPolicy:
    """A bucket's grants, one member list per role, and the etag that names this state."""

    bucket_id: str
    etag: str
    bindings: Mapping[Role, tuple[PolicyMember, ...]]
