"""Typed views of HCP Packer 2023-01-01 responses.

Every model tolerates what live servers send: ``null`` or absent fields take
their defaults, unknown fields are ignored, enum values stay plain strings (so
a newer server's values never break a read), timestamps become aware
``datetime`` objects (the Go zero time ``0001-01-01T00:00:00Z`` becomes
``None``). The server's JSON object is kept as :attr:`WireModel.raw`.

    >>> v = Version.parse({"name": "v3", "fingerprint": "abc", "status": "VERSION_ACTIVE",
    ...                    "builds": None, "revoke_at": None})
    >>> v.number, v.builds, v.revoked
    (3, [], False)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

VERSION_REVOKED = "VERSION_REVOKED"
VERSION_REVOCATION_SCHEDULED = "VERSION_REVOCATION_SCHEDULED"
VERSION_ACTIVE = "VERSION_ACTIVE"


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore")
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            out = {}
            for key, value in data.items():
                if value is None:
                    continue
                if isinstance(value, str) and value.startswith("0001-01-01T00:00:00"):
                    continue  # Go's zero time: unset
                out[key] = value
            return out
        return data

    @classmethod
    def parse(cls, data: Any) -> Self:
        obj = cls.model_validate(data if isinstance(data, dict) else {})
        obj._raw = data if isinstance(data, dict) else {}
        _raw_children(obj)
        return obj

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object the server sent."""
        return self._raw


def _raw_children(model: WireModel) -> None:
    """Attach raw JSON to nested models parsed through model_validate."""
    raw = model.raw
    for name in type(model).model_fields:
        value = getattr(model, name)
        sub = raw.get(name)
        if isinstance(value, WireModel) and isinstance(sub, dict):
            value._raw = sub
            _raw_children(value)
        elif isinstance(value, list) and isinstance(sub, list):
            for item, sub_item in zip(value, sub, strict=False):
                if isinstance(item, WireModel) and isinstance(sub_item, dict):
                    item._raw = sub_item
                    _raw_children(item)


class Location(WireModel):
    organization_id: str = ""
    project_id: str = ""


class Artifact(WireModel):
    id: str = ""
    external_identifier: str = ""
    region: str = ""
    created_at: datetime | None = None


class Build(WireModel):
    id: str = ""
    version_id: str = ""
    component_type: str = ""
    packer_run_uuid: str = ""
    artifacts: list[Artifact] = []
    platform: str = ""
    status: str = "BUILD_UNSET"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    source_external_identifier: str = ""
    labels: dict[str, str] = {}
    metadata: dict[str, Any] | None = None


class VersionRef(WireModel):
    """Names one version of one bucket (ancestry and inherited revocations point this way)."""

    bucket_name: str = ""
    version_name: str = ""
    version_id: str = ""
    version_fingerprint: str = ""


class RevokedAncestor(VersionRef):
    href: str = ""


class AncestrySummary(WireModel):
    href: str = ""
    status: str = "UNDETERMINED"


class VersionSummary(WireModel):
    """The fields every view of a version carries, and what they mean for a consumer."""

    id: str = ""
    name: str = ""
    status: str = "VERSION_UNSET"
    author_id: str = ""
    fingerprint: str = ""
    revoke_at: datetime | None = None
    revocation_message: str = ""
    revocation_author: str = ""
    revocation_type: str = "REVOCATION_TYPE_UNSET"

    @property
    def number(self) -> int:
        """The N of ``vN`` (0 while the version is incomplete)."""
        if self.name.startswith("v") and self.name[1:].isdigit():
            return int(self.name[1:])
        return 0

    @property
    def revoked(self) -> bool:
        """True when revoked now (the only status Packer refuses)."""
        if self.status == VERSION_REVOKED:
            return True
        return self.revoke_at is not None and self.revoke_at <= datetime.now(UTC)

    @property
    def revocation_scheduled(self) -> bool:
        return self.revoke_at is not None and not self.revoked


class Version(VersionSummary):
    bucket_name: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    builds: list[Build] = []
    revocation_inherited_from: RevokedAncestor | None = None
    has_descendants: bool = False
    template_type: str = "TEMPLATE_TYPE_UNSET"
    parents: AncestrySummary | None = None

    def find_artifact(
        self, platform: str, region: str, component_type: str | None = None
    ) -> tuple[Build, Artifact] | None:
        """Pick an artifact the way Packer's ``hcp-packer-artifact`` data source does.

        Builds are walked in order; the first artifact of a build with this
        platform (and component type, when given) in this region wins.
        """
        for build in self.builds:
            if build.platform != platform:
                continue
            if component_type and build.component_type != component_type:
                continue
            for artifact in build.artifacts:
                if artifact.region == region:
                    return build, artifact
        return None

    def available(self) -> dict[str, list[str]]:
        """``{platform: [regions]}`` of every artifact, for "no match" messages."""
        out: dict[str, list[str]] = {}
        for build in self.builds:
            regions = out.setdefault(build.platform, [])
            regions.extend(a.region for a in build.artifacts if a.region not in regions)
        return out


class Bucket(WireModel):
    id: str = ""
    name: str = ""
    location: Location | None = None
    latest_version: Version | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    platforms: list[str] = []
    description: str = ""
    labels: dict[str, str] = {}
    version_count: int = 0
    parents: AncestrySummary | None = None
    children: AncestrySummary | None = None
    resource_name: str = ""


class Channel(WireModel):
    id: str = ""
    name: str = ""
    bucket_name: str = ""
    author_id: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: Version | None = None
    managed: bool = False
    restricted: bool = False


class ChannelAssignment(WireModel):
    version: Version | None = None
    author_id: str = ""
    assigned_at: datetime | None = None


class ChannelPromotion(WireModel):
    """The answer of AssignChannelVersion (``channels promote``)."""

    fingerprint: str = ""
    version: Version | None = None
    source_channel: Channel | None = None
    target_channel: Channel | None = None


class ChannelVersion(WireModel):
    id: str = ""
    name: str = ""
    fingerprint: str = ""


class AncestryParent(VersionRef):
    channel_name: str = ""
    channel_version: ChannelVersion | None = None


class AncestryChild(VersionRef):
    pass


class AncestryRelation(WireModel):
    """One parent→child edge relative to the bucket asked about."""

    status: str = "UNDETERMINED"
    parent: AncestryParent | None = None
    child: AncestryChild | None = None


class ExternalArtifactBucket(WireModel):
    id: str = ""
    name: str = ""
    labels: dict[str, str] = {}


class ExternalArtifactVersion(VersionSummary):
    """The version of a search hit: the summary fields only (no builds)."""


class ExternalArtifact(WireModel):
    """A search hit: which bucket, version and build produced an external id."""

    bucket: ExternalArtifactBucket = ExternalArtifactBucket()
    version: ExternalArtifactVersion = ExternalArtifactVersion()
    build: Build = Build()


class RegistryConfig(WireModel):
    feature_tier: str = "UNSET"
    activated: bool = False


class Registry(WireModel):
    id: str = ""
    location: Location | None = None
    config: RegistryConfig = RegistryConfig()
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Organization(WireModel):
    id: str = ""
    name: str = ""
    state: str = ""
    created_at: datetime | None = None


class ProjectParent(WireModel):
    type: str = ""
    id: str = ""


class Project(WireModel):
    id: str = ""
    name: str = ""
    description: str = ""
    parent: ProjectParent | None = None
    state: str = ""
    created_at: datetime | None = None


# --- Packyard's own API --------------------------------------------------------


class RevocationDescendant(VersionRef):
    revoked: bool = False  # False: it keeps its own (or an earlier) revocation


class ChannelRollback(WireModel):
    bucket_name: str = ""
    channel_name: str = ""
    managed: bool = False
    restricted: bool = False
    from_version: VersionRef | None = None
    to_version: VersionRef | None = None  # None: the channel is left unassigned


class RevocationPreview(WireModel):
    """What revoking a version changes (Packyard only): the descendants that inherit the
    revocation (up to 200 listed, all counted) and the channels rolled back."""

    version: VersionRef | None = None
    revoke_at: datetime | None = None
    immediate: bool = False
    replaces_scheduled: bool = False
    descendants: list[RevocationDescendant] = []
    descendants_revoked: int = 0
    descendants_untouched: int = 0
    channels: list[ChannelRollback] = []
    hidden_descendants: int = 0  # counted above, in buckets the caller does not see
    hidden_channels: int = 0  # rolled back too, in buckets or restricted channels not shown


class RestorePreview(WireModel):
    """What restoring a version changes (Packyard only): the descendants whose inherited
    copy of its revocation is cleared too (up to 200 listed, all counted)."""

    version: VersionRef | None = None
    descendants: list[VersionRef] = []
    descendants_restored: int = 0
    hidden_descendants: int = 0  # counted above, in buckets the caller does not see


class AccessEntry(WireModel):
    """A member's role on the project (``bucket`` empty) or on one bucket (Packyard only)."""

    member_id: str = ""
    member_type: str = ""
    name: str = ""
    role: str = ""
    bucket: str = ""


class AuditActor(WireModel):
    principal_id: str = ""
    type: str = ""
    user: dict[str, Any] = {}
    service: dict[str, Any] = {}

    @property
    def name(self) -> str:
        """The person's email or the service principal's name, else its id."""
        return str(self.user.get("email") or self.service.get("name") or self.principal_id)


class AuditEvent(WireModel):
    """An audit log entry (Packyard only): HCP's flat record plus ``id``, ``seq``,
    ``request_id`` and ``source_address``; the change's object blocks stay in :attr:`raw`."""

    id: str = ""
    seq: int = 0
    status: str = ""
    action: str = ""
    description: str = ""
    organization_id: str = ""
    project_id: str = ""
    timestamp: datetime | None = None
    actor: AuditActor = Field(default_factory=AuditActor)
    error: str = ""
    request_id: str = ""
    source_address: str = ""

    @property
    def bucket(self) -> str:
        block = self.raw.get("bucket")
        return str(block.get("name") or "") if isinstance(block, dict) else ""


class WebhookEvent(WireModel):
    source: str = ""
    action: str = ""


class WebhookSubscription(WireModel):
    resource_id: str = ""
    events: list[WebhookEvent] = []


class WebhookConfig(WireModel):
    url: str = ""


class WebhookRequest(WireModel):
    url: str = ""
    headers: dict[str, str] = {}
    payload: dict[str, Any] = {}
    sent_at: datetime | None = None


class WebhookResponse(WireModel):
    status_code: int = 0
    headers: dict[str, str] = {}
    body: str = ""


class WebhookDelivery(WireModel):
    """One event's delivery to a webhook: HCP's fields plus Packyard's ``state``
    (queued, running, delivered or dead), ``attempts``, ``event_id`` and ``last_error``."""

    id: str = ""
    webhook_resource_id: str = ""
    request: WebhookRequest = Field(default_factory=WebhookRequest)
    response: WebhookResponse = Field(default_factory=WebhookResponse)
    retries: int = 0
    event_id: str = ""
    state: str = ""
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    created_at: datetime | None = None
    finished_at: datetime | None = None


class Webhook(WireModel):
    """A project's webhook (HCP's webhook service); its HMAC key is never returned, only
    whether it has one (``hmac_key_set``, Packyard only)."""

    resource_id: str = ""
    resource_name: str = ""
    name: str = ""
    description: str = ""
    enabled: bool = False
    hmac_key_set: bool = False
    config: WebhookConfig = Field(default_factory=WebhookConfig)
    subscriptions: list[WebhookSubscription] = []
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_delivery: WebhookDelivery | None = None


class PolicyMember(WireModel):
    member_id: str = ""
    member_type: str = ""


class PolicyBinding(WireModel):
    role_id: str = ""
    members: list[PolicyMember] = []


class IamPolicy(WireModel):
    """A bucket's IAM policy as resource-manager GetIamPolicy answers it."""

    bindings: list[PolicyBinding] = []
    etag: str = ""


class EnforcedBlockVersion(WireModel):
    """One immutable version of an enforced provisioner block."""

    id: str = ""
    enforced_block_id: str = ""
    version: str = ""
    template_type: str = ""
    block_content: str = ""
    additional_description: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class EnforcedBlock(WireModel):
    """A named enforced provisioner block; ``latest_version`` only when fetched by id."""

    id: str = ""
    name: str = ""
    labels: dict[str, str] = {}
    resource_name: str = ""
    latest_version: EnforcedBlockVersion | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class EnforcedBlockDetail(WireModel):
    """A block (``id``, ``name``) with one of its versions: what Packer injects."""

    id: str = ""
    name: str = ""
    version: EnforcedBlockVersion | None = None


class EnforcedBlockLink(WireModel):
    """A bucket linked to a version of a block (``bucket`` set by GetLinkedBuckets,
    ``bucket_id`` by ManageLinkedBuckets)."""

    id: str = ""
    bucket: Bucket | None = None
    bucket_id: str = ""
    enforced_block_id: str = ""
    enforced_block_version_id: str = ""
    created_at: datetime | None = None
