"""Ready-to-paste HCL for Packer and Terraform: data sources that read an image from the
registry, the block that makes Packer push to it, and the Terraform provider block.

Attribute names are those of Packer's ``hcp-packer-version``/``hcp-packer-artifact`` data
sources and of the Terraform provider's ``hcp_packer_version``/``hcp_packer_artifact``: a
version data source takes ``bucket_name`` and ``channel_name`` (and exposes the version's
``fingerprint``); an artifact data source takes ``bucket_name``, exactly one of
``channel_name``/``version_fingerprint``, ``platform`` and ``region``, and exposes the image
id as ``external_identifier``.
"""

from __future__ import annotations

import re

_IDENTIFIER_START = re.compile(r"[A-Za-z_]")
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_-]")


def string(value: str) -> str:
    """An HCL string literal: quotes and backslashes escaped, templates kept literal."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("${", "$${")
        .replace("%{", "%%{")
    )
    return f'"{escaped}"'


def identifier(name: str) -> str:
    """A block label usable in references (``data.TYPE.LABEL``) made from a bucket name."""
    label = _NOT_IDENTIFIER.sub("_", name) or "image"
    return label if _IDENTIFIER_START.match(label) else f"_{label}"


def block(kind: str, labels: tuple[str, ...], attributes: list[tuple[str, str]]) -> str:
    """``kind "label" ... { name = value }`` with the ``=`` aligned, as ``fmt`` writes it.
    ``attributes`` values are HCL expressions (strings already quoted)."""
    head = " ".join([kind, *(f'"{label}"' for label in labels)])
    width = max((len(name) for name, _ in attributes), default=0)
    body = "".join(f"  {name.ljust(width)} = {value}\n" for name, value in attributes)
    return f"{head} {{\n{body}}}\n"


def packer_data_sources(
    bucket: str, *, channel: str | None, fingerprint: str | None, platform: str, region: str
) -> str:
    """Packer: the version a channel serves, then its artifact for a platform and region
    (the version data source fails on a revoked version and records the channel as the
    parent of what Packer builds); or the artifact of one version by fingerprint."""
    label = identifier(bucket)
    parts: list[str] = []
    if channel is not None:
        parts.append(
            block(
                "data",
                ("hcp-packer-version", label),
                [("bucket_name", string(bucket)), ("channel_name", string(channel))],
            )
        )
        version = f"data.hcp-packer-version.{label}.fingerprint"
    else:
        version = string(fingerprint or "")
    parts.append(
        block(
            "data",
            ("hcp-packer-artifact", label),
            [
                ("bucket_name", string(bucket)),
                ("version_fingerprint", version),
                ("platform", string(platform)),
                ("region", string(region)),
            ],
        )
    )
    usage = f"# The image id: data.hcp-packer-artifact.{label}.external_identifier\n"
    return "\n".join(parts) + "\n" + usage


def terraform_data_sources(
    bucket: str, *, channel: str | None, fingerprint: str | None, platform: str, region: str
) -> str:
    """Terraform: the version a channel serves (its ``revoke_at`` is there for a
    precondition) and its artifact for a platform and region; or the artifact of one
    version by fingerprint."""
    label = identifier(bucket)
    parts: list[str] = []
    if channel is not None:
        parts.append(
            block(
                "data",
                ("hcp_packer_version", label),
                [("bucket_name", string(bucket)), ("channel_name", string(channel))],
            )
        )
        source = ("channel_name", string(channel))
    else:
        source = ("version_fingerprint", string(fingerprint or ""))
    parts.append(
        block(
            "data",
            ("hcp_packer_artifact", label),
            [
                ("bucket_name", string(bucket)),
                source,
                ("platform", string(platform)),
                ("region", string(region)),
            ],
        )
    )
    usage = f"# The image id: data.hcp_packer_artifact.{label}.external_identifier\n"
    return "\n".join(parts) + "\n" + usage


def packer_registry_block(bucket: str = "my-image") -> str:
    """The block that makes ``packer build`` record its images in the registry."""
    return "# Packer 1.12.1 and later; older versions take this block inside build { }.\n" + block(
        "hcp_packer_registry",
        (),
        [
            ("bucket_name", string(bucket)),
            ("description", string("What this image is for")),
        ],
    )


def terraform_provider_block(project_id: str) -> str:
    """The ``hcp`` provider for this project; the address and credentials come from the
    ``HCP_*`` environment."""
    return (
        "terraform {\n"
        "  required_providers {\n"
        "    hcp = {\n"
        '      source = "hashicorp/hcp"\n'
        "    }\n"
        "  }\n"
        "}\n\n"
        "# The server address and the credentials come from the HCP_* variables.\n"
        + block("provider", ("hcp",), [("project_id", string(project_id))])
    )


__all__ = [
    "block",
    "identifier",
    "packer_data_sources",
    "packer_registry_block",
    "string",
    "terraform_data_sources",
    "terraform_provider_block",
]
