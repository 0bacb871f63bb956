"""``packyard.client``: a typed Python SDK for any HCP Packer 2023-01-01 endpoint.

It works against Packyard and against HCP itself, configured by the same
``HCP_*`` variables (or credential file) that Packer and the Terraform
provider read::

    from packyard.client import ApiError, Code, PackerClient

    with PackerClient.from_env() as hcp:
        bucket = hcp.create_bucket("golden", description="Base images")
        for version in hcp.list_versions("golden"):
            print(version.name, version.fingerprint, version.status)
        try:
            hcp.get_channel("golden", "production")
        except ApiError as exc:
            if exc.code is Code.NOT_FOUND:
                hcp.create_channel("golden", "production")

See ``docs/CLIENT.md`` for the full guide.
"""

from packyard.client.api import PackerClient, error_from_response, is_code, tolerate
from packyard.client.config import ClientConfig, CredentialFile, token_url_for
from packyard.client.models import (
    AncestryChild,
    AncestryParent,
    AncestryRelation,
    Artifact,
    AuditEvent,
    Bucket,
    Build,
    Channel,
    ChannelAssignment,
    ChannelPromotion,
    ExternalArtifact,
    Organization,
    Project,
    Registry,
    Version,
    Webhook,
    WebhookDelivery,
)
from packyard.errors import ApiError, Code

__all__ = [
    "AncestryChild",
    "AncestryParent",
    "AncestryRelation",
    "ApiError",
    "Artifact",
    "AuditEvent",
    "Bucket",
    "Build",
    "Channel",
    "ChannelAssignment",
    "ChannelPromotion",
    "ClientConfig",
    "Code",
    "CredentialFile",
    "ExternalArtifact",
    "Organization",
    "PackerClient",
    "Project",
    "Registry",
    "Version",
    "Webhook",
    "WebhookDelivery",
    "error_from_response",
    "is_code",
    "token_url_for",
    "tolerate",
]
