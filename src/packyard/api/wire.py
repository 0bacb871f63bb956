"""Request bodies exactly as HCP Packer 2023-01-01 clients send them.

Every field is optional (the Go SDK omits empty values and sends ``null`` for
some unset ones); unknown fields are ignored. Services decide what is required.

One rule holds for every body, whatever its fields: its text is Unicode text. Python's
JSON decoder turns a ``"\\ud800"`` escape (or the bytes ``ED A0 80``) into a lone
surrogate, which no database driver can store and no response can carry; such a body is
refused with 400/3 naming the field, before any handler sees it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from packyard.domain.enums import (
    BuildStatus,
    FeatureTier,
    RunTaskBehaviour,
    SbomFormat,
    TemplateType,
)
from packyard.domain.renderable import text_problem
from packyard.errors import invalid


def described(text: str) -> ConfigDict:
    """A model's description in the OpenAPI document. Not its docstring: the serving
    process runs without docstrings (``-OO``, :func:`packyard.server.serving_command`)."""
    return ConfigDict(json_schema_extra={"description": text})


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _unicode_text(cls, data: Any) -> Any:
        """Refuse text that is not Unicode (a lone surrogate), anywhere in the body.

        Runs on the decoded JSON before the fields are validated, so the path names the
        exact place (``artifacts[0].region``, ``labels``). Raises :class:`ApiError`,
        which pydantic lets through and the application renders as 400/3.
        """
        problem = text_problem(data, "")
        if problem is not None:
            field = problem.field or "body"
            raise invalid(f"{field} {problem.reason}.", field=field)
        return data


class CreateRegistryBody(Body):
    feature_tier: FeatureTier | None = None


class UpdateRegistryBody(Body):
    feature_tier: FeatureTier | None = None
    activated: bool | None = None
    update_mask: str | None = None


class CreateBucketBody(Body):
    name: str | None = None
    description: str | None = None
    labels: dict[str, str] | None = None


class UpdateBucketBody(Body):
    platforms: list[str] | None = None
    description: str | None = None
    labels: dict[str, str] | None = None


class CreateVersionBody(Body):
    fingerprint: str | None = None
    template_type: TemplateType | None = None


class UpdateVersionBody(Body):
    complete: bool | None = None
    revocation_message: str | None = None
    revoke_at: datetime | None = None
    revoke_in: str | None = None
    restore: bool | None = None
    skip_descendants_revocation: bool | None = None
    disable_rollback_channels: bool | None = None


class ArtifactBody(Body):
    external_identifier: str | None = None
    region: str | None = None


class BuildMetadataBody(Body):
    packer: dict[str, Any] | None = None
    cicd: dict[str, Any] | None = None
    vcs: dict[str, Any] | None = None


class CreateBuildBody(Body):
    component_type: str | None = None
    packer_run_uuid: str | None = None
    artifacts: list[ArtifactBody] | None = None
    platform: str | None = None
    status: BuildStatus | None = None
    source_external_identifier: str | None = None
    parent_version_id: str | None = None
    parent_channel_id: str | None = None
    labels: dict[str, str] | None = None
    metadata: BuildMetadataBody | None = None


class UpdateBuildBody(Body):
    status: BuildStatus | None = None
    platform: str | None = None
    packer_run_uuid: str | None = None
    artifacts: list[ArtifactBody] | None = None
    labels: dict[str, str] | None = None
    source_external_identifier: str | None = None
    parent_version_id: str | None = None
    parent_channel_id: str | None = None
    metadata: BuildMetadataBody | None = None


class CreateChannelBody(Body):
    name: str | None = None
    version_fingerprint: str | None = None
    restricted: bool | None = None


class UpdateChannelBody(Body):
    version_fingerprint: str | None = None
    restricted: bool | None = None
    update_mask: str | None = None


class AssignChannelVersionBody(Body):
    source_channel: str | None = None
    target_channel: str | None = None


class UploadSbomBody(Body):
    compressed_sbom: str | None = None
    format: SbomFormat | None = None
    name: str | None = None


class SearchExternalArtifactBody(Body):
    external_identifier: str | None = None
    platform: str | None = None
    region: str | None = None


class RegenerateRunTaskHmacBody(Body):
    # The SDK sends ``{}``; the spec's only field names the location the path already names.
    location: dict[str, Any] | None = None


class UpdateRunTaskConfigBody(Body):
    on_untracked_image: Annotated[
        RunTaskBehaviour | None,
        Field(
            description="What the image validation run task does with an image no version of"
            " the registry built; ``UNSET`` warns, as ``WARN`` does."
        ),
    ] = None
