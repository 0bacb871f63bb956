"""What each kind of change records: the :class:`Change` a service passes to
:func:`packyard.services.journal.record`, with the versions, builds and channels its
blocks show loaded in a fixed number of statements, whatever a cascade reaches.

Version events follow HCP Packer: ``create``, ``complete`` (and ``assign`` when `latest`
moves to the completed version), ``revoke``/``schedule-revocation`` for the revoked version
*and every version inheriting the revocation* (so that receivers subscribed to a child
bucket learn of it), ``restore``/``cancel-revocation`` likewise, ``delete``, and ``assign``
for every channel moved (an assignment, an unassignment, or a rollback off a revoked or
deleted version).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Select

from packyard.domain.events import AuditAction, Change, EventAction, VersionEvent
from packyard.domain.models import MANAGED_CHANNEL, Bucket, Build, Channel, Version
from packyard.domain.rules import is_revoked
from packyard.services import event_payloads as p
from packyard.store.channels import ChannelRepo
from packyard.store.revocation import ChannelMove
from packyard.store.versions import BuildRepo, VersionRepo

JSON = dict[str, Any]


# --- loading ---------------------------------------------------------------------------
def with_builds(conn: Connection, items: Sequence[Version]) -> None:
    """Attach their builds (with artifacts) to ``items``: one statement."""
    if not items:
        return
    found = BuildRepo(conn).for_versions([v.id for v in items])
    for v in items:
        v.builds = found.get(v.id, [])


def loaded(conn: Connection, version_ids: Iterable[str]) -> dict[str, Version]:
    """Versions by id with their builds: one statement."""
    return VersionRepo(conn).get_with_builds(version_ids)


def streamed_copies(conn: Connection, origin_ids: Select[Any]) -> Iterator[tuple[Version, str]]:
    """The versions holding an inherited copy of the revocation of one of ``origin_ids`` (a
    one-column selectable), with their builds and the origin each copies, by origin: one
    statement, read as they are used."""
    return VersionRepo(conn).stream_inherited_copies(origin_ids)


def channels_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, Channel]:
    return ChannelRepo(conn).by_ids(ids)


# --- events ----------------------------------------------------------------------------
def version_event(action: EventAction, v: Version, now: datetime, **extra: Any) -> VersionEvent:
    with_builds = action is not EventAction.CREATE
    return VersionEvent(action, {**p.version_payload(v, now, with_builds=with_builds), **extra})


def assign_event(
    channel: Channel, assigned: Version | None, previous: Version | None
) -> VersionEvent:
    bucket_block = {"id": channel.bucket_id, "name": channel.bucket_name}
    return VersionEvent(
        EventAction.ASSIGN, p.assign_payload(channel, assigned, previous, bucket_block)
    )


def reassigned(
    conn: Connection, channel: Channel, assigned: Version | None, previous_id: str | None
) -> VersionEvent:
    """The ``assign`` event of ``channel`` moved from version ``previous_id`` (loaded here,
    with its builds: one statement) to ``assigned``."""
    previous = loaded(conn, [previous_id]).get(previous_id) if previous_id else None
    return assign_event(channel, assigned, previous)


def moves_events(
    conn: Connection, moves: Sequence[ChannelMove], known: Iterable[Version] = ()
) -> list[VersionEvent]:
    """An ``assign`` event per channel moved (rolled back): a fixed number of statements."""
    if not moves:
        return []
    by_id = {v.id: v for v in known}
    wanted = {
        vid for m in moves for vid in (m.version_id, m.previous_version_id) if vid
    } - by_id.keys()
    by_id.update(loaded(conn, wanted))
    found = channels_by_id(conn, [m.channel_id for m in moves])
    out = []
    for m in moves:
        channel = found.get(m.channel_id)
        if channel is None:
            continue
        out.append(
            assign_event(
                channel,
                by_id.get(m.version_id) if m.version_id else None,
                by_id.get(m.previous_version_id) if m.previous_version_id else None,
            )
        )
    return out


def latest_moved(
    conn: Connection,
    bucket: Bucket,
    previous_id: str | None,
    version: Version,
    known: dict[str, Version] | None = None,
) -> list[VersionEvent]:
    """The ``assign`` event of `latest` moved to the just completed ``version`` (the previous
    latest is loaded unless ``known`` holds it)."""
    if bucket.latest_version_id != version.id or previous_id == version.id:
        return []
    latest = ChannelRepo(conn).get(bucket.id, MANAGED_CHANNEL)
    if latest is None:
        return []
    if previous_id and known is not None and previous_id in known:
        return [assign_event(latest, version, known[previous_id])]
    return [reassigned(conn, latest, version, previous_id)]


# --- changes ---------------------------------------------------------------------------
def bucket_change(action: AuditAction, description: str, b: Bucket, **extra: Any) -> Change:
    return Change(action, description, {"bucket": p.bucket(b, labels=True), **extra}, bucket=b.name)


def version_change(
    action: AuditAction,
    description: str,
    v: Version,
    now: datetime,
    events: Iterable[VersionEvent] = (),
    **extra: Any,
) -> Change:
    return Change(
        action,
        description,
        {**p.version_payload(v, now), **extra},
        bucket=v.bucket_name,
        events=events,
    )


def completion(
    conn: Connection, bucket: Bucket, version: Version, previous_latest: str | None, now: datetime
) -> Change:
    """A version just completed: its ``complete`` event, and `latest`'s ``assign``."""
    # The previous latest (if `latest` moved) is loaded with the version: one statement, not two.
    wanted = [version.id]
    if previous_latest and previous_latest != version.id and bucket.latest_version_id == version.id:
        wanted.append(previous_latest)
    found = loaded(conn, wanted)
    fresh = found[version.id]
    events = [version_event(EventAction.COMPLETE, fresh, now)]
    events += latest_moved(conn, bucket, previous_latest, fresh, found)
    return version_change(AuditAction.UPDATE, "Completed version", fresh, now, events)


def build_change(
    action: AuditAction, description: str, bucket: Bucket, version: Version, b: Build, now: datetime
) -> Change:
    return Change(
        action,
        description,
        {
            "bucket": {"id": bucket.id, "name": bucket.name},
            "version": p.version(version, now),
            "build": p.build(b),
        },
        bucket=bucket.name,
    )


def channel_change(
    action: AuditAction,
    description: str,
    c: Channel,
    events: Sequence[VersionEvent] = (),
    **extra: Any,
) -> Change:
    # An assignment's record shows what its event shows: version, builds and the previous ones.
    moved = next((dict(e.payload) for e in events if e.action is EventAction.ASSIGN), {})
    return Change(
        action,
        description,
        {
            **moved,
            "bucket": {"id": c.bucket_id, "name": c.bucket_name},
            "channel": p.channel(c),
            **extra,
        },
        bucket=c.bucket_name,
        events=tuple(events),
    )


def revocation_events(
    conn: Connection,
    origin: Version,
    held: Iterable[tuple[Version, str]],
    now: datetime,
    *,
    skip_descendants: bool,
    moves: Sequence[ChannelMove] = (),
) -> Iterator[VersionEvent]:
    """``revoke`` (in effect) or ``schedule-revocation`` for the origin and every copy in
    ``held`` (which may be :func:`streamed_copies`: read as the events are), then ``assign``
    for each channel rolled back."""
    for v in chain([origin], (c for c, _ in held)):
        action = (
            EventAction.REVOKE if is_revoked(v.revoke_at, now) else EventAction.SCHEDULE_REVOCATION
        )
        yield version_event(action, v, now, skip_descendants_revocation=skip_descendants)
    yield from moves_events(conn, moves, [origin])


def restoration_events(
    cleared: Iterable[tuple[Version, bool]], now: datetime
) -> Iterator[VersionEvent]:
    """``restore`` for each version whose revocation was in effect, ``cancel-revocation``
    for each whose revocation was still scheduled (``cleared``: the version as restored,
    whether its revocation was in effect; read as the events are)."""
    return (
        version_event(EventAction.RESTORE if was else EventAction.CANCEL_REVOCATION, v, now)
        for v, was in cleared
    )


def simple(action: AuditAction, description: str, bucket_name: str = "", **record: Any) -> Change:
    """A change of something that is not a version (principals, users, the registry…)."""
    return Change(action, description, record, bucket=bucket_name)
