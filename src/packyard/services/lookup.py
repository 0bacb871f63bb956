"""Finding things for a caller, with the exact errors stock clients branch on."""

from __future__ import annotations

from sqlalchemy import Connection

from packyard.domain.models import Bucket, Build, Caller, Channel, Version
from packyard.errors import ApiError, Code, not_found, permission_denied
from packyard.store.buckets import BucketRepo
from packyard.store.channels import ChannelRepo
from packyard.store.versions import BuildRepo, VersionRepo


def require_write(caller: Caller) -> None:
    if not caller.can_write:
        raise permission_denied(
            f"Principal {caller.name!r} has the viewer role on this project and cannot make "
            "changes."
        )


def bucket_or_404(conn: Connection, caller: Caller, name: str, *, lock: bool = False) -> Bucket:
    bucket = BucketRepo(conn).get(caller.project_id, name, lock=lock)
    if bucket is None:
        raise not_found(f"Error: The bucket with identifier {name} does not exist.")
    return bucket


def version_missing(fingerprint: str) -> ApiError:
    """Code 10 (ABORTED): Packer creates the version only on exactly this code."""
    return ApiError(Code.ABORTED, f"Version with fingerprint {fingerprint} not found")


def version_or_10(
    conn: Connection, bucket: Bucket, fingerprint: str, *, lock: bool = False
) -> Version:
    version = VersionRepo(conn).get(bucket.id, fingerprint, lock=lock)
    if version is None:
        raise version_missing(fingerprint)
    return version


def build_or_404(conn: Connection, version: Version, build_id: str) -> Build:
    build = BuildRepo(conn).get(version.id, build_id)
    if build is None:
        raise not_found(f"The build with identifier {build_id} does not exist.")
    return build


def channel_or_404(
    conn: Connection, caller: Caller, bucket: Bucket, name: str, *, lock: bool = False
) -> Channel:
    channel = ChannelRepo(conn).get(bucket.id, name, lock=lock)
    if channel is None:
        raise not_found(f"Error: The channel with identifier {name} does not exist.")
    if channel.restricted and not caller.can_write:
        raise permission_denied(
            f"The channel {name} is restricted; principal {caller.name!r} cannot access it."
        )
    return channel
