"""Reverse lookup results: which bucket, version and build produced an artifact."""

from __future__ import annotations

from dataclasses import dataclass

from packyard.domain.models import Build, Version


@dataclass(frozen=True, slots=True)
class ExternalArtifactHit:
    bucket_id: str
    bucket_name: str
    bucket_labels: dict[str, str]
    version: Version
    build: Build


__all__ = ["ExternalArtifactHit"]
