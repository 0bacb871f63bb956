"""Ancestry relations as the bucket ancestry listing reports them."""

from __future__ import annotations

from dataclasses import dataclass

from packyard.domain.enums import AncestryStatus, AncestryType
from packyard.errors import invalid


@dataclass(frozen=True, slots=True)
class VersionRef:
    """Enough of a version to name it in a relation."""

    id: str
    bucket_name: str
    fingerprint: str
    number: int | None

    @property
    def name(self) -> str:
        return f"v{self.number or 0}"


@dataclass(frozen=True, slots=True)
class AncestryRelation:
    """One parent → child edge, seen from the bucket that was asked about.

    ``kind`` says on which side of the edge that bucket is: PARENTS means the
    edge leads to one of its parents, CHILDREN to one of its children.
    """

    kind: AncestryType
    status: AncestryStatus
    parent: VersionRef
    child: VersionRef
    channel_name: str
    channel_version: VersionRef | None


def parse_ancestry_type(raw: str | None) -> AncestryType:
    """The ``type`` query parameter; absent or empty means both sides."""
    if raw is None or not raw.strip():
        return AncestryType.UNSET
    try:
        return AncestryType(raw.strip())
    except ValueError:
        allowed = ", ".join(t.value for t in AncestryType)
        raise invalid(
            f"Invalid ancestry type {raw.strip()[:64]!r}: use one of {allowed}.", field="type"
        ) from None


__all__ = ["AncestryRelation", "VersionRef", "parse_ancestry_type"]
