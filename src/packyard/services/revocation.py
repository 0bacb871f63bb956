"""Revocation and restoration of versions (UpdateVersion).

Rules (api notes §6.5, addendum items 12-15):

* Revoke: exactly one of ``revoke_at`` / ``revoke_in``; a time not in the
  future means now. Any version can be revoked, complete or not (like HCP).
  A version whose revocation is already in effect cannot be revoked again
  (400/9); a *scheduled* revocation, its own or inherited, is replaced.
* Descendants (unless ``skip_descendants_revocation``) inherit the revocation
  (INHERITED, naming the revoked version). A descendant keeps its own MANUAL
  revocation, and an inherited one that takes effect earlier.
* Channels serving a revoked version (user channels and `latest`, in every
  bucket the cascade reaches) roll back unless ``disable_rollback_channels``:
  at once for an immediate revocation, or when the time comes
  (:mod:`packyard.services.scheduler`) for a scheduled one.
* Restore clears the revocation and every inherited copy of it; an inherited
  revocation must be restored on its ancestor. Channels are not rolled forward.

Everything a request changes (the version, its descendants, the rolled-back
channels and their history) commits in one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain

from sqlalchemy import Connection, false, or_, select

from packyard import metrics
from packyard.domain.access import can_view_bucket, visible_buckets
from packyard.domain.enums import RevocationType
from packyard.domain.events import AuditAction
from packyard.domain.models import Caller, Version
from packyard.domain.rules import (
    MAX_LONG_TEXT,
    MAX_REVOKE_HORIZON,
    is_revoked,
    parse_duration,
    printable,
    utcnow,
)
from packyard.domain.visibility import sees_restricted_channels
from packyard.errors import invalid, precondition
from packyard.services import recording
from packyard.services.journal import record
from packyard.services.lifecycle import plan_rollback, roll_back_channels
from packyard.services.lookup import (
    bucket_or_404,
    find_version,
    require_bucket_write,
    require_write,
    version_or_10,
)
from packyard.services.views import load_versions
from packyard.store.engine import Store
from packyard.store.revocation import (
    ChannelMove,
    RevocationRepo,
    RollbackRepo,
    in_tree,
    one_id,
    takes_copy,
)
from packyard.store.schema import versions
from packyard.store.versions import CopyMark, VersionRepo, version_row

_MESSAGE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

NOT_REVOKED = (
    "Restoring does not apply. This version is valid and it is not scheduled to be revoked. "
)
INHERITED_RESTORE = (
    "Directly restoring this version does not apply. The revocation status is inherited from "
    "an ancestor version. To restore this version, the revoked ancestor should be restored."
)


@dataclass(frozen=True, slots=True)
class RevocationRequest:
    revoke_at: datetime | None
    revoke_in: str | None
    message: str
    restore: bool
    skip_descendants: bool
    disable_rollback: bool

    @property
    def touches_revocation(self) -> bool:
        return bool(self.revoke_at or self.revoke_in or self.restore)


@dataclass(frozen=True, slots=True)
class RevocationOutcome:
    """What one revocation changed: inherited copies written and channels moved."""

    revoke_at: datetime
    descendants: int
    channels_moved: int
    moves: tuple[ChannelMove, ...] = ()


# How many descendants a preview lists (it counts them all).
PREVIEW_LIMIT = 200


@dataclass(frozen=True, slots=True)
class DescendantChange:
    """A descendant of the version to revoke: whether the revocation is copied onto it
    (``revoked``), else it keeps what it has (its own revocation, an earlier inherited one,
    or none when descendants are left alone)."""

    version: Version
    revoked: bool


@dataclass(frozen=True, slots=True)
class RestorePreview:
    """What restoring a version would change: its descendants that hold a copy of its
    revocation (at most PREVIEW_LIMIT listed) lose it too."""

    version: Version
    descendants: list[Version]
    descendants_restored: int
    hidden_descendants: int = 0  # counted, in buckets the caller does not see


@dataclass(frozen=True, slots=True)
class ChannelChange:
    """A channel a revocation rolls back: from the version it serves to ``to_version``
    (``None``: unassigned)."""

    bucket_name: str
    channel_name: str
    restricted: bool
    managed: bool
    from_version: Version | None
    to_version: Version | None


@dataclass(frozen=True, slots=True)
class RevocationPreview:
    """What a revocation would change, computed by the SQL that makes the change."""

    version: Version
    revoke_at: datetime
    immediate: bool
    message: str
    cascade: bool
    rollback: bool
    replaces: bool  # the version's scheduled revocation (and its copies) is replaced
    descendants: list[DescendantChange]  # at most PREVIEW_LIMIT, the revoked ones first
    descendants_revoked: int
    descendants_untouched: int
    channels: list[ChannelChange]
    # Counted above but not listed: in buckets the caller does not see, or restricted
    # channels of buckets whose restricted channels it does not see.
    hidden_descendants: int = 0
    hidden_channels: int = 0


class RevocationService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def update(
        self, caller: Caller, bucket_name: str, fingerprint: str, request: RevocationRequest
    ) -> Version:
        require_write(caller)
        if request.restore:
            if request.revoke_at is not None or request.revoke_in:
                raise invalid(
                    "restore cannot be combined with revoke_at or revoke_in.", field="restore"
                )
            return self.restore(caller, bucket_name, fingerprint)
        return self.revoke(caller, bucket_name, fingerprint, request)

    def revoke(
        self, caller: Caller, bucket_name: str, fingerprint: str, request: RevocationRequest
    ) -> Version:
        require_write(caller)
        delay, message = _requested(request)
        with self.store.write(caller.project_id) as conn:
            bucket = bucket_or_404(conn, caller, bucket_name, write=True)
            version = version_or_10(conn, bucket, fingerprint, lock=True)
            now = utcnow()
            outcome = revoke_version(
                conn,
                version,
                at=_effective(version, request, delay, now),
                message=message,
                author=caller.name,
                now=now,
                cascade=not request.skip_descendants,
                rollback=not request.disable_rollback,
            )
            revoked = _reload(conn, version, caller)
            _record_revocation(conn, caller, revoked, outcome, request.skip_descendants, now)
        metrics.event("revocations")
        return revoked

    def preview(
        self,
        caller: Caller,
        bucket_name: str,
        fingerprint: str,
        request: RevocationRequest,
        *,
        limit: int = PREVIEW_LIMIT,
    ) -> RevocationPreview:
        """What :meth:`revoke` would do with ``request`` now, changing nothing.

        The same checks and errors as :meth:`revoke`, and the same SQL for what it
        changes: the descendants its revocation is copied onto (:func:`takes_copy`
        over the descendants CTE) and the channels rolled back (:func:`plan_rollback`,
        which chooses the targets). A scheduled revocation rolls channels back when it
        takes effect; its preview shows what would move then if nothing changed before.
        A fixed number of queries whatever the number of descendants (up to ``limit``
        of them are listed, with the totals).
        """
        require_write(caller)
        delay, message = _requested(request)
        with self.store.read() as conn:
            bucket, version = find_version(conn, caller, bucket_name, fingerprint)
            require_bucket_write(caller, bucket)
            now = utcnow()
            at = _effective(version, request, delay, now)
            load_versions(conn, [version], caller)
            immediate = at <= now
            repo = RevocationRepo(conn)
            found = repo.descendants_preview(
                version.id, at, limit=limit, visible=visible_buckets(caller)
            )
            cascade = not request.skip_descendants
            rollback = not request.disable_rollback
            moves: list[ChannelMove] = []
            if rollback:
                taken = (
                    select(versions.c.id).where(*in_tree(version.id), takes_copy(version.id, at))
                    if cascade
                    else select(versions.c.id).where(false())
                )
                revoked = select(versions.c.id).where(
                    or_(versions.c.id == version.id, versions.c.id.in_(taken))
                )
                moves = plan_rollback(
                    conn, revoked, now=now if immediate else at, author=caller.name, lock=False
                )
            names = RollbackRepo(conn).describe([m.channel_id for m in moves])
            shown = [m for m in moves if _may_see(caller, m, names[m.channel_id][2])]
            served = VersionRepo(conn).get_many(
                v for m in shown for v in (m.version_id, m.previous_version_id) if v
            )
        channels = sorted(
            (
                ChannelChange(
                    bucket_name=names[m.channel_id][0],
                    channel_name=names[m.channel_id][1],
                    restricted=names[m.channel_id][2],
                    managed=m.managed,
                    from_version=served.get(m.previous_version_id or ""),
                    to_version=served.get(m.version_id or ""),
                )
                for m in shown
            ),
            key=lambda c: (c.bucket_name != version.bucket_name, c.bucket_name, c.channel_name),
        )
        return RevocationPreview(
            version=version,
            revoke_at=at,
            immediate=immediate,
            message=message,
            cascade=cascade,
            rollback=rollback,
            replaces=version.revoke_at is not None,
            descendants=[
                DescendantChange(version_row(row, row.bucket_name), revoked=takes and cascade)
                for row, takes in found.rows
            ],
            descendants_revoked=found.taking if cascade else 0,
            descendants_untouched=found.keeping if cascade else found.taking + found.keeping,
            channels=channels,
            hidden_descendants=found.hidden,
            hidden_channels=len(moves) - len(shown),
        )

    def restore_preview(
        self, caller: Caller, bucket_name: str, fingerprint: str, *, limit: int = PREVIEW_LIMIT
    ) -> RestorePreview:
        """What :meth:`restore` would do now, changing nothing: the same checks and errors,
        and the descendants whose inherited copy of the revocation it clears (channels
        stay where the revocation moved them)."""
        require_write(caller)
        with self.store.read() as conn:
            bucket, version = find_version(conn, caller, bucket_name, fingerprint)
            require_bucket_write(caller, bucket)
            _check_restorable(version)
            load_versions(conn, [version], caller)
            rows, total, hidden = RevocationRepo(conn).copies_preview(
                version.id, limit=limit, visible=visible_buckets(caller)
            )
        return RestorePreview(
            version=version,
            descendants=[version_row(row, row.bucket_name) for row in rows],
            descendants_restored=total,
            hidden_descendants=hidden,
        )

    def restore(self, caller: Caller, bucket_name: str, fingerprint: str) -> Version:
        require_write(caller)
        with self.store.write(caller.project_id) as conn:
            bucket = bucket_or_404(conn, caller, bucket_name, write=True)
            version = version_or_10(conn, bucket, fingerprint, lock=True)
            _check_restorable(version)
            now = utcnow()
            held = VersionRepo(conn).inherited_copy_marks(one_id(version.id))
            restore_version(conn, version.id, now=now)
            restored = _reload(conn, version, caller)
            _record_restore(conn, caller, version, restored, held, now)
        metrics.event("restores")
        return restored


def revoke_version(
    conn: Connection,
    version: Version,
    *,
    at: datetime,
    message: str,
    author: str,
    now: datetime,
    cascade: bool,
    rollback: bool,
) -> RevocationOutcome:
    """Revoke ``version`` from ``at`` (``at <= now`` means immediately), set-based.

    The caller holds the version's bucket lock. A previous scheduled revocation
    of the version is replaced together with the copies it gave descendants.
    """
    repo = RevocationRepo(conn)
    immediate = at <= now
    if version.revoke_at is not None:
        repo.clear_copies(version.id, now)
    repo.set_manual(
        version.id,
        revoke_at=at,
        message=message,
        author=author,
        pending=rollback and not immediate,
        now=now,
    )
    copies = (
        repo.cascade(version.id, revoke_at=at, message=message, author=author, now=now)
        if cascade
        else 0
    )
    moves: list[ChannelMove] = []
    if immediate and rollback:
        moves = roll_back_channels(
            conn, RevocationRepo.revoked_by(one_id(version.id)), now=now, author=author
        )
    return RevocationOutcome(
        revoke_at=at, descendants=copies, channels_moved=len(moves), moves=tuple(moves)
    )


def _record_revocation(
    conn: Connection,
    caller: Caller,
    version: Version,
    outcome: RevocationOutcome,
    skip_descendants: bool,
    now: datetime,
) -> None:
    held = recording.streamed_copies(conn, one_id(version.id))
    events = recording.revocation_events(
        conn, version, held, now, skip_descendants=skip_descendants, moves=outcome.moves
    )
    immediate = is_revoked(version.revoke_at, now)
    change = recording.version_change(
        AuditAction.UPDATE,
        "Revoked version" if immediate else "Scheduled version revocation",
        version,
        now,
        events,
        skip_descendants_revocation=skip_descendants,
        descendants_revoked=outcome.descendants,
        channels_rolled_back=outcome.channels_moved,
    )
    record(conn, caller.project_id, caller, change)


def _record_restore(
    conn: Connection,
    caller: Caller,
    before: Version,
    restored: Version,
    held: dict[str, CopyMark],
    now: datetime,
) -> None:
    """``restore`` where the revocation was in effect, ``cancel-revocation`` where it was
    still scheduled: for the version and each descendant that inherited it (``held``: what
    they held before the restore; they are read, restored, as the events are recorded)."""
    in_effect = is_revoked(before.revoke_at, now)
    copies = VersionRepo(conn).stream_with_builds(held)
    was = ((v, is_revoked(held[v.id].revoke_at, now)) for v in copies)
    cleared = chain([(restored, in_effect)], was)
    change = recording.version_change(
        AuditAction.UPDATE,
        "Restored version" if in_effect else "Cancelled version revocation",
        restored,
        now,
        recording.restoration_events(cleared, now),
        descendants_restored=len(held),
    )
    record(conn, caller.project_id, caller, change)


def restore_version(conn: Connection, version_id: str, *, now: datetime) -> int:
    """Clear the revocation of ``version_id`` and the copies it gave; returns the copies."""
    repo = RevocationRepo(conn)
    copies = repo.clear_copies(version_id, now)
    repo.clear(version_id, now)
    return copies


def _may_see(caller: Caller, move: ChannelMove, restricted: bool) -> bool:
    """Whether a preview may name the channel ``move`` rolls back to ``caller``."""
    if not can_view_bucket(caller, move.bucket_id):
        return False
    return not restricted or sees_restricted_channels(caller, move.bucket_id)


def _check_restorable(version: Version) -> None:
    if version.revoke_at is None:
        raise precondition(NOT_REVOKED)
    if version.revocation_type is RevocationType.INHERITED:
        raise precondition(INHERITED_RESTORE)


def _requested(request: RevocationRequest) -> tuple[timedelta | None, str]:
    """The delay (``revoke_in``) and message of a revocation request, checked."""
    if (request.revoke_at is None) == (not request.revoke_in):
        raise invalid(
            "Exactly one of revoke_at or revoke_in must be set to revoke a version.",
            field="revoke_at",
        )
    delay = parse_duration(request.revoke_in) if request.revoke_in else None
    return delay, _validate_message(request.message)


def _effective(
    version: Version, request: RevocationRequest, delay: timedelta | None, now: datetime
) -> datetime:
    """When the revocation of ``version`` takes effect (``now`` for a time not ahead)."""
    if is_revoked(version.revoke_at, now):
        raise precondition(f"Version {version.name} ({version.fingerprint}) is already revoked.")
    if delay is not None:
        at = now + delay
    else:
        assert request.revoke_at is not None
        at = _as_utc(request.revoke_at)
        if at - now > MAX_REVOKE_HORIZON:
            raise invalid("revoke_at is too far in the future.", field="revoke_at")
    return max(at, now)


def _reload(conn: Connection, version: Version, caller: Caller) -> Version:
    fresh = VersionRepo(conn).get_by_id(version.id)
    assert fresh is not None
    load_versions(conn, [fresh], caller)
    return fresh


def _as_utc(value: datetime) -> datetime:
    """RFC 3339 times carry an offset; a bare time is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise invalid("revoke_at is out of range.", field="revoke_at") from None


def _validate_message(value: str) -> str:
    if len(value) > MAX_LONG_TEXT:
        raise invalid(
            f"revocation_message is longer than {MAX_LONG_TEXT} characters.",
            field="revocation_message",
        )
    if _MESSAGE_CONTROL.search(value):
        raise invalid(
            f"revocation_message {printable(value)} contains control characters.",
            field="revocation_message",
        )
    return value


__all__ = [
    "INHERITED_RESTORE",
    "NOT_REVOKED",
    "PREVIEW_LIMIT",
    "ChannelChange",
    "DescendantChange",
    "RevocationOutcome",
    "RevocationPreview",
    "RevocationRequest",
    "RevocationService",
    "restore_version",
    "revoke_version",
]
