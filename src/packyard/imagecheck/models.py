"""The records of an image check: what the registry knows, and what the check found."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class PlanError(ValueError):
    """The input is not Terraform plan JSON (the message is one plain line)."""


class Level(StrEnum):
    ok = "ok"
    info = "info"
    warn = "warn"
    fail = "fail"


class Untracked(StrEnum):
    """What an image unknown to the registry is."""

    warn = "warn"
    fail = "fail"

    @classmethod
    def from_behaviour(cls, value: str | None) -> Untracked:
        """The run task's ``RunTaskBehaviour``: ``FAIL`` fails; ``WARN`` and ``UNSET`` warn."""
        return cls.fail if (value or "").upper() == "FAIL" else cls.warn


@dataclass(frozen=True, slots=True)
class KnownImage:
    """An image id the registry tracks: the build artifact it is, in which version."""

    bucket: str
    version_name: str
    fingerprint: str
    version_id: str
    revoke_at: datetime | None
    revocation_message: str
    platform: str
    region: str
    version_number: int = 0
    build_id: str = ""
    component_type: str = ""
    status: str = ""  # the wire status (VERSION_ACTIVE, ...) when the lookup has it

    def revoked(self, now: datetime) -> bool:
        return self.revoke_at is not None and self.revoke_at <= now

    def scheduled(self, now: datetime) -> bool:
        return self.revoke_at is not None and self.revoke_at > now


@dataclass(frozen=True, slots=True)
class ChannelArtifact:
    platform: str
    component_type: str
    region: str
    image_id: str


@dataclass(frozen=True, slots=True)
class ChannelVersion:
    """The version a channel serves, with its artifacts in build order."""

    channel: str
    version_name: str
    version_number: int
    fingerprint: str
    revoke_at: datetime | None
    artifacts: tuple[ChannelArtifact, ...] = ()

    def replacement(self, image: KnownImage) -> str | None:
        """The image of this version for the same platform and region (same component first),
        the way Packer's ``hcp-packer-artifact`` data source picks one."""
        same_place = [
            a for a in self.artifacts if a.platform == image.platform and a.region == image.region
        ]
        exact = [a for a in same_place if a.component_type == image.component_type]
        chosen = exact or same_place
        return chosen[0].image_id if chosen else None


@dataclass(frozen=True, slots=True)
class NewerImage:
    """A channel serving a newer version than the one a resource deploys."""

    channel: str
    version_name: str
    fingerprint: str
    image_id: str | None  # the newer version's image for the same platform/region, if any


class Lookup(Protocol):
    """What the registry knows, asked in batches (one call for all images of a plan)."""

    def find(self, image_ids: Iterable[str]) -> Mapping[str, list[KnownImage]]:
        """Every tracked image per id; ids the registry does not track may be left out."""
        ...

    def channels(self, buckets: Iterable[str]) -> Mapping[str, list[ChannelVersion]]:
        """The channels of each bucket that serve a version (those the reader may see)."""
        ...


@dataclass(slots=True)
class ImageRef:
    """One image id a plan deploys: which resource, which attribute, from where."""

    address: str
    type: str
    action: str  # create, replace, update, no-op
    attribute: str
    platform: str
    image_id: str | None  # None: unknown until apply
    source: str = "literal"  # or "data_source"
    data_source: str | None = None  # e.g. data.hcp_packer_artifact.ubuntu
    data_source_deferred: bool = False  # the data source is read only during apply


@dataclass(slots=True)
class Finding:
    address: str
    resource_type: str
    action: str  # create, replace, update, no-op
    image_id: str | None
    source: str  # data_source or literal
    level: Level
    reason: str  # one plain line
    image: KnownImage | None = None
    newer: list[tuple[str, str]] = field(default_factory=list)  # (channel, version_name)
    attribute: str = ""
    platform: str = ""
    data_source: str | None = None
    channels: list[str] = field(default_factory=list)  # channels serving this very version
    newer_images: list[NewerImage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what a reader is told, one line each


@dataclass(slots=True)
class PlanReport:
    findings: list[Finding]
    scanned: int  # resources of the plan that deploy something (create/replace/update/no-op)
    failed: int  # resources with a failing image
    warned: int  # resources with a warning and no failure
    checked: int = 0  # resources with at least one image reference

    @property
    def ok(self) -> bool:
        return not any(f.level is Level.fail for f in self.findings)

    @property
    def newer_available(self) -> int:
        """Resources deploying an image when a channel of its bucket serves a newer version."""
        return len({f.address for f in self.findings if f.newer})


__all__ = [
    "ChannelArtifact",
    "ChannelVersion",
    "Finding",
    "ImageRef",
    "KnownImage",
    "Level",
    "Lookup",
    "NewerImage",
    "PlanError",
    "PlanReport",
    "Untracked",
]
