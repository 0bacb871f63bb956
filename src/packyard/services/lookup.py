"""Finding things for a caller, with the exact errors stock clients branch on."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from packyard.domain.access import (
    bucket_role,
    can_view_bucket,
    can_write_bucket,
    writable_buckets,
)
from packyard.domain.enums import Role
from packyard.domain.models import Bucket, Build, Caller, Channel, Version
from packyard.domain.visibility import can_see_channel
from packyard.errors import ApiError, Code, not_found, permission_denied
from packyard.store.buckets import BucketRepo
from packyard.store.channels import ChannelRepo
from packyard.store.versions import BuildRepo, VersionRepo


def require_write(caller: Caller) -> None:
    """Refuse early a caller that may change no bucket at all (writes to one bucket then
    check that bucket: :func:`bucket_or_404` with ``write=True``)."""
    if writable_buckets(caller) is False:
        raise permission_denied(
            f"Principal {caller.name!r} {_holds(caller.role)} on this project and cannot make "
            "changes."
        )


def require_project_write(caller: Caller) -> None:
    """Changes of the project itself (buckets, the registry) need a project role."""
    if not caller.can_write:
        raise permission_denied(
            f"Principal {caller.name!r} {_holds(caller.role)} on this project; this change needs "
            "the contributor or admin role on the project (a grant on a bucket is not enough)."
        )


def require_bucket_write(caller: Caller, bucket: Bucket) -> None:
    if not can_write_bucket(caller, bucket.id):
        role = bucket_role(caller, bucket.id)
        raise permission_denied(
            f"Principal {caller.name!r} {_holds(role)} on bucket {bucket.name} and cannot "
            "change it."
        )


def _holds(role: Role | None) -> str:
    return f"has the {role.value} role" if role is not None else "has no role"


def bucket_or_404(conn: Connection, caller: Caller, name: str, *, write: bool = False) -> Bucket:
    """The bucket, if the caller may see it (others answer as missing, so that bucket names
    do not leak). With ``write`` the caller must be allowed to change it, and its row is
    locked until the transaction ends."""
    bucket = BucketRepo(conn).get(caller.project_id, name, lock=write)
    if bucket is None or not can_view_bucket(caller, bucket.id):
        raise bucket_missing(name)
    if write:
        require_bucket_write(caller, bucket)
    return bucket


def bucket_missing(name: str) -> ApiError:
    return not_found(f"Error: The bucket with identifier {name} does not exist.")


def version_missing(fingerprint: str) -> ApiError:
    """Code 10 (ABORTED): Packer creates the version only on exactly this code."""
    return ApiError(Code.ABORTED, f"Version with fingerprint {fingerprint} not found")


def version_not_found(fingerprint: str) -> ApiError:
    """404: how a read (rather than Packer's push) answers a missing version."""
    return not_found(f"Error: The version with identifier {fingerprint} does not exist.")


def version_or_10(
    conn: Connection, bucket: Bucket, fingerprint: str, *, lock: bool = False
) -> Version:
    version = VersionRepo(conn).get(bucket.id, fingerprint, lock=lock)
    if version is None:
        raise version_missing(fingerprint)
    return version


def find_version(
    conn: Connection,
    caller: Caller,
    bucket_name: str,
    fingerprint: str,
    *,
    missing: Callable[[str], ApiError] = version_missing,
) -> tuple[Bucket, Version]:
    """:func:`bucket_or_404` then :func:`version_or_10`, read in one query; a missing
    version raises ``missing(fingerprint)``."""
    found = VersionRepo(conn).find_in_bucket(caller.project_id, bucket_name, fingerprint)
    return found_version(caller, bucket_name, fingerprint, found, missing)


def found_version(
    caller: Caller,
    bucket_name: str,
    fingerprint: str,
    found: tuple[Bucket, Version | None] | None,
    missing: Callable[[str], ApiError] = version_missing,
) -> tuple[Bucket, Version]:
    """The bucket and version of a bucket-and-version read (``VersionRepo.find_in_bucket``)
    if the caller may see them, else the error :func:`find_version` answers."""
    if found is None or not can_view_bucket(caller, found[0].id):
        raise bucket_missing(bucket_name)
    bucket, version = found
    if version is None:
        raise missing(fingerprint)
    return bucket, version


def lock_version(
    conn: Connection, caller: Caller, bucket_name: str, fingerprint: str
) -> tuple[Bucket, Version]:
    """:func:`bucket_or_404` with ``write=True`` then :func:`version_or_10` with ``lock=True``.

    One statement locks and reads both rows when both exist. Otherwise the
    step-by-step lookup runs: it answers the right error, and finds a version that
    a writer holding the bucket lock created meanwhile. The version is its row
    alone (no revocation origin, ``has_descendants``): reload it to render it.
    """
    found = VersionRepo(conn).lock_in_bucket(caller.project_id, bucket_name, fingerprint)
    if found is not None:
        _require_writable(caller, found[0], bucket_name)
        return found
    bucket = bucket_or_404(conn, caller, bucket_name, write=True)
    return bucket, version_or_10(conn, bucket, fingerprint, lock=True)


def lock_channel(
    conn: Connection,
    caller: Caller,
    bucket_name: str,
    name: str,
    *,
    fingerprint: str | None = None,
) -> tuple[Bucket, Channel, Version | None]:
    """:func:`bucket_or_404` with ``write=True`` then :func:`channel_or_404` with ``lock=True``.

    With ``fingerprint``, that version of the bucket is locked and read too
    (``None`` if it does not exist): the version row alone, as from
    :func:`lock_version`. One statement when everything exists.
    """
    found = ChannelRepo(conn).lock_in_bucket(
        caller.project_id, bucket_name, name, fingerprint=fingerprint
    )
    if found is not None:
        bucket, channel, version = found
        _require_writable(caller, bucket, bucket_name)
        _check_access(caller, channel)
        return bucket, channel, version
    bucket = bucket_or_404(conn, caller, bucket_name, write=True)
    channel = channel_or_404(conn, caller, bucket, name, lock=True)
    version = None
    if fingerprint is not None:
        version = VersionRepo(conn).get(bucket.id, fingerprint, lock=True)
    return bucket, channel, version


def _require_writable(caller: Caller, bucket: Bucket, name: str) -> None:
    if not can_view_bucket(caller, bucket.id):
        raise bucket_missing(name)
    require_bucket_write(caller, bucket)


def build_or_404(conn: Connection, version: Version, build_id: str) -> Build:
    build = BuildRepo(conn).get(version.id, build_id)
    if build is None:
        raise build_missing(build_id)
    return build


def build_missing(build_id: str) -> ApiError:
    return not_found(f"The build with identifier {build_id} does not exist.")


def channel_or_404(
    conn: Connection, caller: Caller, bucket: Bucket, name: str, *, lock: bool = False
) -> Channel:
    channel = ChannelRepo(conn).get(bucket.id, name, lock=lock)
    if channel is None:
        raise channel_missing(name)
    _check_access(caller, channel)
    return channel


def find_channel(conn: Connection, caller: Caller, bucket_name: str, name: str) -> Channel:
    """:func:`bucket_or_404` then :func:`channel_or_404`, read in one query."""
    found = ChannelRepo(conn).find_in_bucket(caller.project_id, bucket_name, name)
    return found_channel(caller, bucket_name, name, found)


def found_channel(
    caller: Caller, bucket_name: str, name: str, found: tuple[Bucket, Channel | None] | None
) -> Channel:
    """The channel of a bucket-and-channel read (``ChannelRepo.find_in_bucket``) if the
    caller may see it, else the error :func:`find_channel` answers."""
    if found is None or not can_view_bucket(caller, found[0].id):
        raise bucket_missing(bucket_name)
    channel = found[1]
    if channel is None:
        raise channel_missing(name)
    _check_access(caller, channel)
    return channel


def channel_missing(name: str) -> ApiError:
    return not_found(f"Error: The channel with identifier {name} does not exist.")


def _check_access(caller: Caller, channel: Channel) -> None:
    # Answering 403 (not 404) admits that the channel exists, as HCP does.
    if not can_see_channel(caller, channel):
        raise permission_denied(
            f"The channel {channel.name} is restricted; principal {caller.name!r} cannot access it."
        )


# --- 2021-04-30 API: an iteration (version) addressed by its id alone ---
def version_by_id(
    conn: Connection, caller: Caller, version_id: str
) -> tuple[Bucket, Version] | None:
    """The version ``version_id`` of a bucket of the caller's project that the caller may
    see, else ``None`` (versions of other projects and hidden buckets answer as missing)."""
    version = VersionRepo(conn).get_by_id(version_id)
    if version is None:
        return None
    bucket = BucketRepo(conn).get(caller.project_id, version.bucket_name)
    if bucket is None or bucket.id != version.bucket_id or not can_view_bucket(caller, bucket.id):
        return None
    return bucket, version
