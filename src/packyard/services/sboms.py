"""SBOMs attached to builds: upload while the build runs, list, and signed download links."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time

import orjson
import zstandard

from packyard.domain.enums import BuildStatus, SbomFormat
from packyard.domain.models import Caller
from packyard.domain.rules import utcnow
from packyard.errors import already_exists, invalid, not_found
from packyard.ids import new_id
from packyard.services.auth import AuthService
from packyard.services.lookup import bucket_or_404, build_or_404, require_write, version_or_10
from packyard.store.engine import Store
from packyard.store.sboms import Sbom, SbomRepo

MAX_SBOM_BYTES = 32 * 1024 * 1024
DOWNLOAD_TTL_S = 15 * 60
_NAME_RE = re.compile(r"^[A-Za-z0-9-]{3,36}$")


class SbomService:
    def __init__(self, store: Store, auth: AuthService) -> None:
        self.store = store
        self.auth = auth

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
        document = _decode(compressed, sbom_format)
        sbom = Sbom(
            id=new_id(),
            build_id=build_id,
            name=name or new_id(),
            format=sbom_format,
            created_at=utcnow(),
        )
        with self.store.write(caller.project_id) as conn:
            bucket = bucket_or_404(conn, caller, bucket_name, lock=True)
            version = version_or_10(conn, bucket, fingerprint)
            build = build_or_404(conn, version, build_id)
            if build.status is not BuildStatus.RUNNING:
                raise invalid("This build's status isn't Running, so sboms can not be uploaded")
            repo = SbomRepo(conn)
            if repo.exists(build.id, sbom.name):
                raise already_exists(f"An SBOM named {sbom.name} already exists for this build.")
            repo.insert(sbom, document)
        return sbom

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
            f"/sbom-downloads/{sbom.id}?expires={expires}&signature={self._sign(sbom.id, expires)}"
        )

    def download(self, sbom_id: str, expires: int, signature: str) -> bytes:
        expected = self._sign(sbom_id, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()) or expires < time.time():
            raise not_found("This download link is invalid or has expired.")
        with self.store.read() as conn:
            found = SbomRepo(conn).content(sbom_id)
        if found is None:
            raise not_found("This download link is invalid or has expired.")
        return found[1]

    def _sign(self, sbom_id: str, expires: int) -> str:
        mac = hmac.new(
            self.auth.signing_key(), f"sbom:{sbom_id}:{expires}".encode(), hashlib.sha256
        )
        return mac.hexdigest()


def _decode(compressed: str | None, sbom_format: SbomFormat) -> bytes:
    """base64 → zstd → JSON, checked to be a document of the announced format."""
    if not compressed:
        raise invalid("compressed_sbom is required.", field="compressed_sbom")
    try:
        raw = base64.b64decode(compressed, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("compressed_sbom is not valid base64.", field="compressed_sbom") from None
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        document = reader.read(MAX_SBOM_BYTES + 1)
    except zstandard.ZstdError:
        raise invalid("compressed_sbom is not zstd-compressed.", field="compressed_sbom") from None
    if len(document) > MAX_SBOM_BYTES:
        raise invalid(
            f"The SBOM is larger than {MAX_SBOM_BYTES} bytes uncompressed.", field="compressed_sbom"
        )
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
