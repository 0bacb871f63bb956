"""Enumerations of the registry, named exactly as on the HCP wire."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    ADMIN = "admin"

    @property
    def can_write(self) -> bool:
        return self is not Role.VIEWER

    @property
    def rank(self) -> int:
        """Grants are additive: of two roles the one ranked higher applies."""
        return _ROLE_RANKS[self]


_ROLE_RANKS = {Role.VIEWER: 0, Role.CONTRIBUTOR: 1, Role.ADMIN: 2}


class MemberType(StrEnum):
    """Who a bucket grant is for, named as in HCP's IAM policy bindings."""

    SERVICE_PRINCIPAL = "SERVICE_PRINCIPAL"
    USER = "USER"


class BuildStatus(StrEnum):
    UNSET = "BUILD_UNSET"
    RUNNING = "BUILD_RUNNING"
    DONE = "BUILD_DONE"
    CANCELLED = "BUILD_CANCELLED"
    FAILED = "BUILD_FAILED"


class VersionStatus(StrEnum):
    UNSET = "VERSION_UNSET"
    RUNNING = "VERSION_RUNNING"
    CANCELLED = "VERSION_CANCELLED"
    FAILED = "VERSION_FAILED"
    REVOKED = "VERSION_REVOKED"
    REVOCATION_SCHEDULED = "VERSION_REVOCATION_SCHEDULED"
    ACTIVE = "VERSION_ACTIVE"
    INCOMPLETE = "VERSION_INCOMPLETE"


class TemplateType(StrEnum):
    UNSET = "TEMPLATE_TYPE_UNSET"
    HCL2 = "HCL2"
    JSON = "JSON"


class RevocationType(StrEnum):
    UNSET = "REVOCATION_TYPE_UNSET"
    MANUAL = "MANUAL"
    INHERITED = "INHERITED"


class AncestryStatus(StrEnum):
    UNDETERMINED = "UNDETERMINED"
    UP_TO_DATE = "UP_TO_DATE"
    OUT_OF_DATE = "OUT_OF_DATE"


class AncestryType(StrEnum):
    UNSET = "ANCESTRY_TYPE_UNSET"
    PARENTS = "ANCESTRY_TYPE_PARENTS"
    CHILDREN = "ANCESTRY_TYPE_CHILDREN"


class FeatureTier(StrEnum):
    UNSET = "UNSET"
    STANDARD = "STANDARD"
    PLUS = "PLUS"


class SbomFormat(StrEnum):
    CYCLONEDX = "CYCLONEDX"
    SPDX = "SPDX"


# What the image validation run task does with an image no version of the registry built
# (``on_untracked_image``); ``UNSET`` warns, as ``WARN`` does. A comment, not a docstring:
# pydantic would put a docstring in the API's document, which the serving process, run
# without docstrings, would then serve without it (``api.wire.described``).
class RunTaskBehaviour(StrEnum):
    UNSET = "UNSET"
    FAIL = "FAIL"
    WARN = "WARN"
