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

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, select

from packyard.domain.enums import RevocationType
from packyard.domain.events import AuditAction, Change, EventAction, VersionEvent
from packyard.domain.models import Bucket, Build, Channel, Version
from packyard.domain.rules import is_revoked
from packyard.services import event_payloads as p
from packyard.store.channels import ChannelRepo, channel_from_row
from packyard.store.revocation import ChannelMove
from packyard.store.schema import artifacts, buckets, builds, channels, versions
from packyard.store.versions import BuildRepo, VersionRepo, _builds_from_rows, version_row

JSON = dict[str, Any]

_INHERITED = RevocationType.INHERITED.value


# --- loading ---------------------------------------------------------------------------
def with_builds(conn: Connection, items: Sequence[Version]) -> None:
    """Attach their builds (with artifacts) to ``items``: one statement."""
    if not items:
        return
    found = BuildRepo(conn).for_versions([v.id for v in items])
    for v in items:
        v.builds = found.get(v.id, [])


def loaded(conn: Connection, version_ids: Iterable[str]) -> dict[str, Version]:
    """Versions by id with their builds: two statements."""
    found = VersionRepo(conn).get_many(version_ids)
    with_builds(conn, list(found.values()))
    return found


def copies(conn: Connection, origin_ids: Select[Any]) -> list[tuple[Version, str]]:
    """The versions holding an inherited copy of the revocation of one of ``origin_ids``
    (a one-column selectable), with their builds and the origin each copies: two
    statements for any number of them."""
    held = and_(
        versions.c.revocation_inherited_from.in_(origin_ids),
        versions.c.revocation_type == _INHERITED,
    )
    rows = conn.execute(
        select(versions, buckets.c.name.label("bucket_name"))
        .join(buckets, buckets.c.id == versions.c.bucket_id)
        .where(held)
        .order_by(buckets.c.name, versions.c.number, versions.c.id)
    ).all()
    out = [(version_row(r, r.bucket_name), str(r.revocation_inherited_from)) for r in rows]
    if out:
        found: dict[str, list[Build]] = {}
        for b in _builds_from_rows(
            conn.execute(
                select(builds, *_ARTIFACT_COLUMNS)
                .outerjoin(artifacts, artifacts.c.build_id == builds.c.id)
                .where(builds.c.version_id.in_(select(versions.c.id).where(held)))
                .order_by(builds.c.created_at, builds.c.id, artifacts.c.created_at, artifacts.c.id)
            )
        ):
            found.setdefault(b.version_id, []).append(b)
        for v, _ in out:
            v.builds = found.get(v.id, [])
    return out


_ARTIFACT_COLUMNS = (
    artifacts.c.id.label("artifact_id"),
    artifacts.c.external_identifier,
    artifacts.c.region,
    artifacts.c.created_at.label("artifact_created_at"),
)


def channels_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, Channel]:
    if not ids:
        return {}
    rows = conn.execute(ChannelRepo(conn)._select().where(channels.c.id.in_(list(ids))))
    return {r.id: channel_from_row(r) for r in rows}


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
    conn: Connection, bucket: Bucket, previous_id: str | None, version: Version
) -> list[VersionEvent]:
    """The ``assign`` event of `latest` moved to the just completed ``version``."""
    if bucket.latest_version_id != version.id or previous_id == version.id:
        return []
    rows = conn.execute(
        ChannelRepo(conn)
        ._select()
        .where(channels.c.bucket_id == bucket.id, channels.c.managed.is_(True))
    ).all()
    if not rows:
        return []
    previous = loaded(conn, [previous_id]).get(previous_id) if previous_id else None
    return [assign_event(channel_from_row(rows[0]), version, previous)]


# --- changes ---------------------------------------------------------------------------
def bucket_change(action: AuditAction, description: str, b: Bucket, **extra: Any) -> Change:
    return Change(action, description, {"bucket": p.bucket(b, labels=True), **extra}, bucket=b.name)


def version_change(
    action: AuditAction,
    description: str,
    v: Version,
    now: datetime,
    events: Sequence[VersionEvent] = (),
    **extra: Any,
) -> Change:
    return Change(
        action,
        description,
        {**p.version_payload(v, now), **extra},
        bucket=v.bucket_name,
        events=tuple(events),
    )


def completion(
    conn: Connection, bucket: Bucket, version: Version, previous_latest: str | None, now: datetime
) -> Change:
    """A version just completed: its ``complete`` event, and `latest`'s ``assign``."""
    fresh = loaded(conn, [version.id])[version.id]
    events = [version_event(EventAction.COMPLETE, fresh, now)]
    events += latest_moved(conn, bucket, previous_latest, fresh)
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
    held: Sequence[tuple[Version, str]],
    now: datetime,
    *,
    skip_descendants: bool,
    moves: Sequence[ChannelMove] = (),
) -> list[VersionEvent]:
    """``revoke`` (in effect) or ``schedule-revocation`` for the origin and every copy,
    then ``assign`` for each channel rolled back."""
    out = []
    for v in [origin, *(c for c, _ in held)]:
        action = (
            EventAction.REVOKE if is_revoked(v.revoke_at, now) else EventAction.SCHEDULE_REVOCATION
        )
        out.append(version_event(action, v, now, skip_descendants_revocation=skip_descendants))
    out += moves_events(conn, moves, [origin, *(c for c, _ in held)])
    return out


def restoration_events(
    cleared: Sequence[tuple[Version, bool]], now: datetime
) -> list[VersionEvent]:
    """``restore`` for each version whose revocation was in effect, ``cancel-revocation``
    for each whose revocation was still scheduled (``cleared``: the version as restored,
    whether its revocation was in effect)."""
    return [
        version_event(EventAction.RESTORE if was else EventAction.CANCEL_REVOCATION, v, now)
        for v, was in cleared
    ]


def cleared(v: Version) -> None:
    """``v`` as restoring leaves it (in memory)."""
    v.revoke_at = None
    v.revocation_message = ""
    v.revocation_author = ""
    v.revocation_type = None
    v.revocation_inherited_from = None


def simple(action: AuditAction, description: str, bucket_name: str = "", **record: Any) -> Change:
    """A change of something that is not a version (principals, users, the registry…)."""
    return Change(action, description, record, bucket=bucket_name)
