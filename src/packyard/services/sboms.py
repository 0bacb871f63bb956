"""SBOMs attached to builds: upload while the build runs, list, and signed download links.

Uploads arrive zstd-compressed, and zstd compresses a run of one byte about 20,000
to 1: a 1.4 KB upload could expand to any size. Decompression therefore streams in
chunks and stops as soon as the document exceeds :attr:`SbomLimits.document_bytes`
(the decoder's window is bounded by the same size), and what is stored is bounded
per build (count and bytes) and per project. Every limit has an environment
override; a refused upload stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

import orjson
import zstandard

from packyard.config import env_number
from packyard.domain.enums import BuildStatus, SbomFormat
from packyard.domain.events import AuditAction
from packyard.domain.models import Caller
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code, already_exists, invalid, not_found
from packyard.ids import new_id
from packyard.services.auth import AuthService
from packyard.services.journal import record
from packyard.services.lookup import (
    bucket_or_404,
    build_or_404,
    find_version,
    require_write,
    version_not_found,
    version_or_10,
)
from packyard.services.recording import simple
from packyard.store.engine import Store
from packyard.store.sboms import Sbom, SbomRepo

MIB = 1024 * 1024
# One SBOM, decompressed (a CycloneDX or SPDX document of a full OS image is a few MiB).
MAX_SBOM_BYTES = int(env_number("PACKYARD_SBOM_MAX_MB", 16, minimum=1) * MIB)
# SBOMs of one build: how many, and their total decompressed size.
MAX_SBOMS_PER_BUILD = int(env_number("PACKYARD_SBOMS_PER_BUILD", 10, minimum=1))
MAX_SBOM_BYTES_PER_BUILD = int(env_number("PACKYARD_SBOM_BUILD_MAX_MB", 64, minimum=1) * MIB)
# All SBOMs of one project (on PostgreSQL, uploads to different buckets running at the
# same moment may each pass the check: the total can exceed it by a few documents).
MAX_SBOM_BYTES_PER_PROJECT = int(env_number("PACKYARD_SBOM_PROJECT_MAX_MB", 1024, minimum=1) * MIB)
DOWNLOAD_TTL_S = 15 * 60
_NAME_RE = re.compile(r"^[A-Za-z0-9-]{3,36}$")
_CHUNK = 256 * 1024  # decompressed bytes produced per step
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"


@dataclass(frozen=True, slots=True)
class SbomLink:
    """An SBOM and a path that downloads it without a bearer token, for a short time."""

    sbom: Sbom
    path: str


@dataclass(frozen=True, slots=True)
class SbomLimits:
    document_bytes: int = MAX_SBOM_BYTES
    per_build: int = MAX_SBOMS_PER_BUILD
    build_bytes: int = MAX_SBOM_BYTES_PER_BUILD
    project_bytes: int = MAX_SBOM_BYTES_PER_PROJECT


class SbomService:
    def __init__(self, store: Store, auth: AuthService, limits: SbomLimits | None = None) -> None:
        self.store = store
        self.auth = auth
        self.limits = limits or SbomLimits()

    def upload(
        self,
        caller: Caller,
        bucket_name: str,
        fingerprint: str,
        build_id: str,
        *,
        compressed: str | None,
        sbom_format: SbomFormat | None,
        name: str | None,
    ) -> Sbom:
        require_write(caller)
        if sbom_format is None:
            raise invalid("format must be CYCLONEDX or SPDX.", field="format")
        if name and not _NAME_RE.fullmatch(name):
            raise invalid("name must be 3-36 letters, digits or '-'.", field="name")
        document = _decode(compressed, sbom_format, self.limits.document_bytes)
        sbom = Sbom(
            id=new_id(),
            build_id=build_id,
            name=name or new_id(),
            format=sbom_format,
            created_at=utcnow(),
        )
        with self.store.write(caller.project_id) as conn:
            bucket = bucket_or_404(conn, caller, bucket_name, write=True)
            version = version_or_10(conn, bucket, fingerprint)
            build = build_or_404(conn, version, build_id)
            if build.status is not BuildStatus.RUNNING:
                raise invalid("This build's status isn't Running, so sboms can not be uploaded")
            repo = SbomRepo(conn)
            if repo.exists(build.id, sbom.name):
                raise already_exists(f"An SBOM named {sbom.name} already exists for this build.")
            self._check_quotas(repo, caller.project_id, build.id, len(document))
            repo.insert(sbom, document)
            change = simple(
                AuditAction.CREATE,
                "Uploaded SBOM",
                bucket.name,
                bucket={"id": bucket.id, "name": bucket.name},
                version={
                    "id": version.id,
                    "fingerprint": version.fingerprint,
                    "name": version.name,
                },
                build={"id": build.id, "component_type": build.component_type},
                sbom={"id": sbom.id, "name": sbom.name, "format": sbom.format.value},
            )
            record(conn, caller.project_id, caller, change)
        return sbom

    def _check_quotas(self, repo: SbomRepo, project_id: str, build_id: str, size: int) -> None:
        limits = self.limits
        count, build_bytes = repo.build_usage(build_id)
        if count >= limits.per_build:
            raise _quota(
                f"build/{build_id}/sbom-count",
                f"This build already has {count} SBOMs, the most a build may have.",
            )
        if build_bytes + size > limits.build_bytes:
            raise _quota(
                f"build/{build_id}/sbom-bytes",
                f"This SBOM ({size} bytes) would take the build's SBOMs over "
                f"{limits.build_bytes} bytes ({build_bytes} stored).",
            )
        project_bytes = repo.project_bytes(project_id)
        if project_bytes + size > limits.project_bytes:
            raise _quota(
                f"project/{project_id}/sbom-bytes",
                f"This SBOM ({size} bytes) would take the project's SBOMs over "
                f"{limits.project_bytes} bytes ({project_bytes} stored).",
            )

    def list_for_build(
        self, caller: Caller, bucket_name: str, fingerprint: str, build_id: str
    ) -> list[Sbom]:
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            version = version_or_10(conn, bucket, fingerprint)
            build = build_or_404(conn, version, build_id)
            return SbomRepo(conn).for_build(build.id)

    def download_path(
        self, caller: Caller, bucket_name: str, fingerprint: str, build_id: str, name: str
    ) -> str:
        """A short-lived path that returns the SBOM without a bearer token."""
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            version = version_or_10(conn, bucket, fingerprint)
            build = build_or_404(conn, version, build_id)
            sbom = SbomRepo(conn).by_name(build.id, name)
        if sbom is None:
            raise not_found(f"The sbom with name {name[:64]} does not exist.")
        expires = int(time.time()) + DOWNLOAD_TTL_S
        return (
            f"/sbom-downloads/{sbom.id}?expires={expires}"
            f"&signature={_sign(self.auth.signing_key(), sbom.id, expires)}"
        )

    def links_for_version(
        self, caller: Caller, bucket_name: str, fingerprint: str
    ) -> dict[str, list[SbomLink]]:
        """Every SBOM of the version's builds with a short-lived download path, by build id.

        Two queries whatever the number of builds and SBOMs (the version, then its
        SBOMs); a missing bucket or version is 404.
        """
        with self.store.read() as conn:
            _, version = find_version(
                conn, caller, bucket_name, fingerprint, missing=version_not_found
            )
            by_build = SbomRepo(conn).for_version(version.id)
        key = self.auth.signing_key()
        expires = int(time.time()) + DOWNLOAD_TTL_S
        return {
            build_id: [
                SbomLink(
                    sbom=s,
                    path=f"/sbom-downloads/{s.id}?expires={expires}"
                    f"&signature={_sign(key, s.id, expires)}",
                )
                for s in items
            ]
            for build_id, items in by_build.items()
        }

    def download(self, sbom_id: str, expires: int, signature: str) -> bytes:
        # Links are signed with the current token key and stay good while it verifies tokens
        # (a key rotation's grace period), like the tokens themselves.
        signed = any(
            hmac.compare_digest(_sign(key.secret, sbom_id, expires).encode(), signature.encode())
            for key in self.auth.keys.verifying_keys()
        )
        if not signed or expires < time.time():
            raise not_found("This download link is invalid or has expired.")
        with self.store.read() as conn:
            found = SbomRepo(conn).content(sbom_id)
        if found is None:
            raise not_found("This download link is invalid or has expired.")
        return found[1]


def _quota(subject: str, message: str) -> ApiError:
    """429/8 with a ``google.rpc.QuotaFailure`` naming what is full."""
    violation = {"subject": subject, "description": message}
    return ApiError(
        Code.RESOURCE_EXHAUSTED,
        message,
        details=[{"@type": _QUOTA_FAILURE, "violations": [violation]}],
    )


def _decompress(raw: bytes, limit: int) -> bytes:
    """The zstd frame in ``raw``, refused as soon as it grows beyond ``limit`` bytes.

    Output is produced in chunks, so at most ``limit`` plus one chunk is ever held;
    the decoder may not use a window larger than the document may be (8 MiB at least,
    zstd's usual window), which bounds its own memory the same way.
    """
    window = max(8 * MIB, 1 << (limit - 1).bit_length())
    produced = bytearray()
    try:
        with zstandard.ZstdDecompressor(max_window_size=window).stream_reader(raw) as reader:
            while chunk := reader.read(_CHUNK):
                produced += chunk
                if len(produced) > limit:
                    raise invalid(
                        f"The SBOM is larger than {limit} bytes uncompressed.",
                        field="compressed_sbom",
                    )
    except zstandard.ZstdError:
        raise invalid(
            f"compressed_sbom is not zstd-compressed data that decompresses within {window} "
            "bytes of window.",
            field="compressed_sbom",
        ) from None
    return bytes(produced)


def _decode(compressed: str | None, sbom_format: SbomFormat, limit: int) -> bytes:
    """base64 → zstd → JSON, checked to be a document of the announced format."""
    if not compressed:
        raise invalid("compressed_sbom is required.", field="compressed_sbom")
    try:
        raw = base64.b64decode(compressed, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("compressed_sbom is not valid base64.", field="compressed_sbom") from None
    document = _decompress(raw, limit)
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        raise invalid("The SBOM is not JSON.", field="compressed_sbom") from None
    if not isinstance(parsed, dict):
        raise invalid("The SBOM is not a JSON object.", field="compressed_sbom")
    looks_cyclonedx = parsed.get("bomFormat") == "CycloneDX"
    looks_spdx = isinstance(parsed.get("spdxVersion"), str)
    if (sbom_format is SbomFormat.CYCLONEDX and not looks_cyclonedx) or (
        sbom_format is SbomFormat.SPDX and not looks_spdx
    ):
        raise invalid(
            f"The SBOM is not a {sbom_format.value} JSON document.", field="compressed_sbom"
        )
    return document


def _sign(key: bytes, sbom_id: str, expires: int) -> str:
    return hmac.new(key, f"sbom:{sbom_id}:{expires}".encode(), hashlib.sha256).hexdigest()
