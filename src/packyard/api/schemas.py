"""Response schemas for Packyard's own OpenAPI document (``/openapi.json``).

Handlers return pre-rendered JSON (``JSONBody``) for speed, so FastAPI cannot infer
what a 200 looks like. These pydantic models describe the bodies ``api/render.py``
produces; they are used **only** to document the API (:func:`install_openapi`), never
to validate or serialise a response, so they cost nothing per request.

Every error answer is a ``google.rpc.Status`` (:class:`Status`), declared as each
operation's ``default`` response in place of FastAPI's 422 validation schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from packyard.api.wire import described


class _Doc(BaseModel):
    # Additional fields stay allowed: a newer server may render more than is listed here.
    model_config = ConfigDict(extra="allow")


class FieldViolation(_Doc):
    field: str
    description: str


class Status(_Doc):
    model_config = described("google.rpc.Status: the body of every error.")

    code: int
    message: str
    details: list[dict[str, Any]]


class Location(_Doc):
    organization_id: str
    project_id: str
    region: dict[str, Any] | None = None


class Pagination(_Doc):
    next_page_token: str
    previous_page_token: str


class Artifact(_Doc):
    id: str
    external_identifier: str
    region: str
    created_at: str | None


class BuildMetadata(_Doc):
    packer: dict[str, Any] | None = None
    cicd: dict[str, Any] | None = None
    vcs: dict[str, Any] | None = None


class Build(_Doc):
    id: str
    version_id: str
    component_type: str
    packer_run_uuid: str
    artifacts: list[Artifact]
    platform: str
    status: str
    created_at: str | None
    updated_at: str | None
    source_external_identifier: str
    labels: dict[str, str]
    metadata: BuildMetadata | None


class AncestryLink(_Doc):
    href: str
    status: str


class InheritedRevocation(_Doc):
    href: str
    bucket_name: str
    version_name: str
    version_id: str
    version_fingerprint: str


class Version(_Doc):
    id: str
    bucket_name: str
    name: str
    status: str
    author_id: str
    created_at: str | None
    updated_at: str | None
    fingerprint: str
    builds: list[Build]
    revoke_at: str | None
    revocation_message: str
    revocation_author: str
    revocation_type: str
    revocation_inherited_from: InheritedRevocation | None
    has_descendants: bool
    template_type: str
    parents: AncestryLink | None


class Bucket(_Doc):
    id: str
    name: str
    location: Location
    latest_version: Version | None
    created_at: str | None
    updated_at: str | None
    platforms: list[str]
    description: str
    labels: dict[str, str]
    version_count: str
    resource_name: str
    parents: AncestryLink | None = None
    children: AncestryLink | None = None


class Channel(_Doc):
    id: str
    name: str
    bucket_name: str
    author_id: str
    created_at: str | None
    updated_at: str | None
    version: Version | None
    managed: bool
    restricted: bool


class RunTaskConfigDoc(_Doc):
    model_config = described("RegistryTFCRunTaskConfig; ``hmac_key`` is always empty here.")

    api_id: str
    hmac_key: str
    on_untracked_image: str


class RegistryConfig(_Doc):
    feature_tier: str
    activated: bool
    tfc_run_task_config: RunTaskConfigDoc | None = None


class Registry(_Doc):
    id: str
    location: Location
    config: RegistryConfig
    created_at: str | None
    updated_at: str | None


class ChannelAssignment(_Doc):
    version: Version | None
    author_id: str
    assigned_at: str | None


# --- operation bodies -----------------------------------------------------------------------


class Empty(_Doc):
    pass


class BucketBody(_Doc):
    bucket: Bucket


class BucketList(_Doc):
    buckets: list[Bucket]
    pagination: Pagination


class VersionBody(_Doc):
    version: Version


class UpdateVersionResult(_Doc):
    version: Version
    operation: dict[str, Any] | None = None


class VersionList(_Doc):
    versions: list[Version]
    pagination: Pagination


class BuildBody(_Doc):
    build: Build


class BuildList(_Doc):
    location: Location
    pagination: Pagination
    builds: list[Build]


class ChannelBody(_Doc):
    channel: Channel


class ChannelList(_Doc):
    channels: list[Channel]


class ChannelHistory(_Doc):
    history: list[ChannelAssignment]
    count: int
    pagination: Pagination


class AssignChannelResult(_Doc):
    fingerprint: str
    version: Version | None
    source_channel: Channel
    target_channel: Channel


class RegistryBody(_Doc):
    registry: Registry


class RegistryChange(_Doc):
    registry: Registry | None = None
    operation: dict[str, Any] | None = None


class AncestryList(_Doc):
    relations: list[dict[str, Any]]
    total_count: int
    pagination: Pagination


class ExternalArtifact(_Doc):
    bucket: dict[str, Any]
    version: dict[str, Any]
    build: Build


class SearchResult(_Doc):
    artifacts: list[ExternalArtifact]
    pagination: Pagination


class SbomList(_Doc):
    sboms: list[dict[str, Any]]


class SbomBody(_Doc):
    sbom: dict[str, Any]


class SbomDownload(_Doc):
    download_url: str


class TokenResponse(_Doc):
    access_token: str
    token_type: str
    expires_in: int


class Organizations(_Doc):
    organizations: list[dict[str, Any]]


class Projects(_Doc):
    projects: list[dict[str, Any]]


class ProjectBody(_Doc):
    project: dict[str, Any]


class EnforcedBlockVersion(_Doc):
    id: str
    enforced_block_id: str
    version: str
    template_type: str
    block_content: str
    additional_description: str
    created_at: str | None
    updated_at: str | None


class EnforcedBlock(_Doc):
    id: str
    name: str
    location: Location
    labels: dict[str, str]
    resource_name: str
    latest_version: EnforcedBlockVersion | None
    created_at: str | None
    updated_at: str | None


class EnforcedBlockDetail(_Doc):
    id: str
    name: str
    version: EnforcedBlockVersion


class EnforcedBlocks(_Doc):
    model_config = described("GetEnforcedBlocksByBucket and GetEnforcedBlockVersions.")

    enforced_block_detail: list[EnforcedBlockDetail]


class EnforcedBlockBody(_Doc):
    enforced_block: EnforcedBlock


class EnforcedBlockList(_Doc):
    enforced_blocks: list[EnforcedBlock]


class EnforcedBlockVersionBody(_Doc):
    enforced_block_version: EnforcedBlockVersion


class EnforcedBlockLinkedBucket(_Doc):
    id: str
    bucket: Bucket
    enforced_block_id: str
    enforced_block_version_id: str
    created_at: str | None


class EnforcedBlockLinkedBuckets(_Doc):
    linked_buckets: list[EnforcedBlockLinkedBucket]


class EnforcedBlockBucket(_Doc):
    id: str
    bucket_id: str
    enforced_block_id: str
    enforced_block_version_id: str
    created_at: str | None


class EnforcedBlockBuckets(_Doc):
    enforced_block_buckets: list[EnforcedBlockBucket]


class VersionRefDoc(_Doc):
    bucket_name: str
    version_id: str
    version_name: str
    version_fingerprint: str


class DescendantDoc(VersionRefDoc):
    revoked: bool


class ChannelRollbackDoc(_Doc):
    bucket_name: str
    channel_name: str
    managed: bool
    restricted: bool
    from_version: VersionRefDoc | None
    to_version: VersionRefDoc | None


class RunTaskApi(_Doc):
    api_url: str
    hmac_key: str


class RunTaskHmacKey(_Doc):
    hmac_key: str


class RunTaskPolicy(_Doc):
    on_untracked_image: str


class RevocationPreviewDoc(_Doc):
    version: VersionRefDoc
    revoke_at: str
    immediate: bool
    replaces_scheduled: bool
    descendants: list[DescendantDoc]
    descendants_revoked: int
    descendants_untouched: int
    channels: list[ChannelRollbackDoc]
    hidden_descendants: int
    hidden_channels: int


class RestorePreviewDoc(_Doc):
    version: VersionRefDoc
    descendants: list[VersionRefDoc]
    descendants_restored: int
    hidden_descendants: int


class PolicyMemberDoc(_Doc):
    member_id: str
    member_type: str


class PolicyBindingDoc(_Doc):
    role_id: str
    members: list[PolicyMemberDoc]


class PolicyDoc(_Doc):
    bindings: list[PolicyBindingDoc]
    etag: str


class IamPolicyBody(_Doc):
    policy: PolicyDoc


class PrincipalDoc(_Doc):
    id: str
    type: str
    group_ids: list[str]


class Principals(_Doc):
    principals: list[PrincipalDoc]


class AccessEntryDoc(_Doc):
    member_id: str
    member_type: str
    name: str
    role: str
    bucket: str | None


class AccessList(_Doc):
    access: list[AccessEntryDoc]


class AccessBody(_Doc):
    access: AccessEntryDoc


class AuditEventDoc(_Doc):
    model_config = described(
        "HCP's flat audit record (plus the object blocks of the change) and Packyard's fields."
    )

    status: str
    action: str
    description: str
    organization_id: str
    project_id: str
    timestamp: str
    actor: dict[str, Any]
    error: str | None = None
    id: str
    seq: int
    request_id: str
    source_address: str


class AuditList(_Doc):
    events: list[AuditEventDoc]
    next_page_token: str


class WebhookSubscriptionEventDoc(_Doc):
    source: str
    action: str


class WebhookSubscriptionDoc(_Doc):
    resource_id: str
    events: list[WebhookSubscriptionEventDoc]


class WebhookDeliveryDoc(_Doc):
    model_config = described("HCP's delivery fields, then Packyard's (HCP has no delivery state).")

    id: str
    webhook_resource_id: str
    request: dict[str, Any]  # url, headers, payload (the event envelope), sent_at
    response: dict[str, Any]  # status_code, headers, body (at most 4 KiB)
    retries: int
    event_id: str
    state: str  # queued | running | delivered | dead
    attempts: int
    next_attempt_at: str | None
    last_error: str
    created_at: str
    finished_at: str | None


class WebhookDoc(_Doc):
    model_config = described(
        "A webhook; its HMAC key is never returned (``hmac_key_set`` says whether it has one)."
    )

    resource_id: str
    resource_name: str
    name: str
    config: dict[str, Any]
    description: str
    enabled: bool
    subscriptions: list[WebhookSubscriptionDoc]
    created_at: str
    updated_at: str
    hmac_key_set: bool
    last_delivery: WebhookDeliveryDoc | None = None


class WebhookBody(_Doc):
    webhook: WebhookDoc


class WebhookList(_Doc):
    webhooks: list[WebhookDoc]
    pagination: Pagination


class WebhookDeliveryList(_Doc):
    deliveries: list[WebhookDeliveryDoc]
    pagination: Pagination


class WebhookDeliveryBody(_Doc):
    delivery: WebhookDeliveryDoc


#: The 200 body of each operation, by operation id. Operations missing here keep FastAPI's
#: inferred (empty) schema.
RESPONSES: dict[str, type[BaseModel]] = {
    "OAuth2_Token": TokenResponse,
    "OrganizationService_List": Organizations,
    "ProjectService_List": Projects,
    "ProjectService_Get": ProjectBody,
    "PackerService_GetRegistry": RegistryBody,
    "PackerService_GetRegistryTFCRunTaskAPI": RunTaskApi,
    "PackerService_RegenerateTFCRunTaskHmacKey": RunTaskHmacKey,
    "PackerService_GetRunTaskConfig": RunTaskPolicy,
    "PackerService_UpdateRunTaskConfig": RunTaskPolicy,
    "PackerService_CreateRegistry": RegistryChange,
    "PackerService_UpdateRegistry": RegistryChange,
    "PackerService_DeleteRegistry": RegistryChange,
    "PackerService_ListBuckets": BucketList,
    "PackerService_CreateBucket": BucketBody,
    "PackerService_GetBucket": BucketBody,
    "PackerService_UpdateBucket": BucketBody,
    "PackerService_DeleteBucket": Empty,
    "PackerService_ListVersions": VersionList,
    "PackerService_CreateVersion": VersionBody,
    "PackerService_GetVersion": VersionBody,
    "PackerService_UpdateVersion": UpdateVersionResult,
    "PackerService_DeleteVersion": Empty,
    "PackerService_ListBuilds": BuildList,
    "PackerService_CreateBuild": BuildBody,
    "PackerService_GetBuild": BuildBody,
    "PackerService_UpdateBuild": BuildBody,
    "PackerService_DeleteBuild": Empty,
    "PackerService_ListChannels": ChannelList,
    "PackerService_CreateChannel": ChannelBody,
    "PackerService_GetChannel": ChannelBody,
    "PackerService_UpdateChannel": ChannelBody,
    "PackerService_DeleteChannel": Empty,
    "PackerService_AssignChannelVersion": AssignChannelResult,
    "PackerService_ListChannelAssignmentHistory": ChannelHistory,
    "PackerService_GetEnforcedBlocksByBucket": EnforcedBlocks,
    "PackerService_ListEnforcedBlocks": EnforcedBlockList,
    "PackerService_CreateEnforcedBlock": EnforcedBlockBody,
    "PackerService_GetEnforcedBlock": EnforcedBlockBody,
    "PackerService_UpdateEnforcedBlock": EnforcedBlockBody,
    "PackerService_DeleteEnforcedBlock": Empty,
    "PackerService_GetEnforcedBlockVersions": EnforcedBlocks,
    "PackerService_CreateEnforcedBlockVersion": EnforcedBlockVersionBody,
    "PackerService_UpdateEnforcedBlockVersion": EnforcedBlockVersionBody,
    "PackerService_DeleteEnforcedBlockVersion": Empty,
    "PackerService_GetEnforcedBlockLinkedBuckets": EnforcedBlockLinkedBuckets,
    "PackerService_ManageEnforcedBlockLinkedBuckets": EnforcedBlockBuckets,
    "PackerService_ListBucketAncestry": AncestryList,
    "PackerService_SearchExternalArtifact": SearchResult,
    "PackerService_ListSboms": SbomList,
    "PackerService_UploadSbom": SbomBody,
    "PackerService_GetSbom": SbomDownload,
    "Packyard_PreviewRevocation": RevocationPreviewDoc,
    "Packyard_PreviewRestore": RestorePreviewDoc,
    "ResourceService_GetIamPolicy": IamPolicyBody,
    "ResourceService_SetIamPolicy": IamPolicyBody,
    "IamService_BatchGetPrincipals": Principals,
    "Packyard_ListAccess": AccessList,
    "Packyard_GrantAccess": AccessBody,
    "Packyard_RevokeAccess": Empty,
    "WebhookService_CreateWebhook": WebhookBody,
    "WebhookService_ListWebhooks": WebhookList,
    "WebhookService_GetWebhook": WebhookBody,
    "WebhookService_UpdateWebhook": WebhookBody,
    "WebhookService_UpdateWebhookName": WebhookBody,
    "WebhookService_DeleteWebhook": Empty,
    "WebhookService_ListWebhookDeliveries": WebhookDeliveryList,
    "Packyard_RedeliverWebhookDelivery": WebhookDeliveryBody,
    "Packyard_ListAuditEvents": AuditList,
}

_REF = "#/components/schemas/{model}"


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with real 200 schemas and ``google.rpc.Status`` errors."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    models: list[type[BaseModel]] = sorted({*RESPONSES.values(), Status}, key=_name)
    refs, defs = models_json_schema([(m, "serialization") for m in models], ref_template=_REF)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(defs.get("$defs", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    status_ref = refs[(Status, "serialization")]
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.pop("422", None)
            model = RESPONSES.get(operation.get("operationId", ""))
            if model is not None:
                responses["200"] = {
                    "description": "Success.",
                    "content": {"application/json": {"schema": refs[(model, "serialization")]}},
                }
            responses["default"] = {
                "description": "Any failure: a google.rpc.Status.",
                "content": {"application/json": {"schema": status_ref}},
            }
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_openapi` at ``app.openapi_url`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
