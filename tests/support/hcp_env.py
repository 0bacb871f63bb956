"""The ``HCP_*`` environment (and SDK clients) that point the Packyard client at a test server."""

from __future__ import annotations

from urllib.parse import urlsplit

from packyard.client import Channel, ClientConfig, PackerClient
from packyard.domain.enums import Role
from tests.support.factories import TenantFixture

# Every variable the client reads: set or explicitly removed, so the developer's own
# environment (a real HCP_CRED_FILE, say) never leaks into a test.
HCP_KEYS = (
    "HCP_API_ADDRESS",
    "HCP_API_HOST",
    "HCP_API_TLS",
    "HCP_AUTH_URL",
    "HCP_AUTH_TLS",
    "HCP_CLIENT_ID",
    "HCP_CLIENT_SECRET",
    "HCP_CRED_FILE",
    "HCP_ORGANIZATION_ID",
    "HCP_PROJECT_ID",
    "PACKYARD_TOKEN_CACHE",
)


def hcp_env(
    base_url: str,
    tenant: TenantFixture,
    role: Role = Role.ADMIN,
    *,
    with_tenant_ids: bool = True,
) -> dict[str, str | None]:
    """Variables for ``base_url`` (http → ``HCP_API_TLS=disabled``, https → ``insecure``)."""
    parts = urlsplit(base_url)
    ident = tenant.identities[role]
    env: dict[str, str | None] = dict.fromkeys(HCP_KEYS)
    env.update(
        {
            "HCP_API_ADDRESS": parts.netloc,
            "HCP_API_TLS": "disabled" if parts.scheme == "http" else "insecure",
            "HCP_AUTH_URL": f"{parts.scheme}://{parts.netloc}",
            "HCP_AUTH_TLS": "insecure" if parts.scheme == "https" else None,
            "HCP_CLIENT_ID": ident.client_id,
            "HCP_CLIENT_SECRET": ident.client_secret,
        }
    )
    if with_tenant_ids:
        env["HCP_ORGANIZATION_ID"] = tenant.organization_id
        env["HCP_PROJECT_ID"] = tenant.project_id
    return env


def sdk_client(base_url: str, tenant: TenantFixture, role: Role = Role.ADMIN) -> PackerClient:
    env = {k: v for k, v in hcp_env(base_url, tenant, role).items() if v is not None}
    return PackerClient(ClientConfig.from_env(env))


def process_env(base: dict[str, str], extra: dict[str, str | None]) -> dict[str, str]:
    """``base`` (e.g. ``os.environ``) with ``extra`` applied; ``None`` removes a variable."""
    out = {k: v for k, v in base.items() if k not in extra}
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def push(
    hcp: PackerClient,
    bucket: str,
    fingerprint: str,
    regions: dict[str, str],
    *,
    component: str = "amazon-ebs.base",
    platform: str = "aws",
    **fields: str,
) -> None:
    """Publish a complete one-build version the way Packer does; ``regions`` maps region → id."""
    hcp.create_version(bucket, fingerprint)
    build = hcp.create_build(bucket, fingerprint, component)
    hcp.update_build(bucket, fingerprint, build.id, status="BUILD_RUNNING")
    hcp.update_build(
        bucket,
        fingerprint,
        build.id,
        status="BUILD_DONE",
        platform=platform,
        artifacts=[{"external_identifier": i, "region": r} for r, i in regions.items()],
        **fields,
    )


def push_built_from(
    hcp: PackerClient,
    channel: Channel,
    bucket: str,
    fingerprint: str,
    regions: dict[str, str],
    **fields: str,
) -> None:
    """:func:`push` a version built from the image ``channel`` serves (its recorded parent)."""
    assert channel.version is not None, "the parent channel serves no version"
    push(
        hcp,
        bucket,
        fingerprint,
        regions,
        parent_version_id=channel.version.id,
        parent_channel_id=channel.id,
        **fields,
    )
