"""Channels: named pointers to versions, with assignment history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from packyard.domain.access import can_write_bucket
from packyard.domain.events import AuditAction
from packyard.domain.models import (
    MANAGED_AUTHOR,
    Bucket,
    Caller,
    Channel,
    ChannelAssignment,
    Version,
)
from packyard.domain.paging import Page, PageRequest
from packyard.domain.rules import is_revoked, parse_field_mask, utcnow, validate_name
from packyard.domain.visibility import can_see_channel, sees_restricted_channels
from packyard.errors import already_exists, invalid, not_found, precondition
from packyard.ids import new_id
from packyard.services import event_payloads, recording
from packyard.services.journal import record
from packyard.services.lookup import (
    bucket_or_404,
    channel_or_404,
    lock_channel,
    require_write,
)
from packyard.services.views import (
    find_loaded_channel,
    find_loaded_version,
    load_channels,
    load_versions,
)
from packyard.store import generations
from packyard.store.channels import ChannelRepo
from packyard.store.engine import Store
from packyard.store.versions import VersionRepo

_CHANNEL_MASK = {
    "versionFingerprint": "version_fingerprint",
    "version_fingerprint": "version_fingerprint",
    "restricted": "restricted",
}


@dataclass(slots=True)
class HistoryEntry:
    assignment: ChannelAssignment
    version: Version | None


@dataclass(slots=True)
class Promotion:
    version: Version | None
    source: Channel
    target: Channel


# How many assignable versions the console offers in a select (newest first).
ASSIGNABLE_LIMIT = 100


@dataclass(slots=True)
class ChannelSummary:
    channel: Channel
    last_change: ChannelAssignment | None  # the newest history entry


@dataclass(slots=True)
class ChannelsOverview:
    """A bucket's channels as the console lists them, and what a writer may assign."""

    bucket: Bucket
    channels: list[ChannelSummary]
    assignable: list[Version]  # empty for a caller who cannot write


@dataclass(slots=True)
class TimelineItem:
    """One history entry: the channel moved from ``previous`` to ``version``.

    ``version_id``/``previous_id`` name what the history recorded; the version is
    ``None`` when that was "unassigned" (id ``None``) or the version has been deleted.
    ``first`` marks the channel's first entry (nothing before it).
    """

    assignment: ChannelAssignment
    version: Version | None
    previous_id: str | None
    previous: Version | None
    first: bool

    @property
    def rollback(self) -> bool:
        """Whether this move took the channel off a version as its revocation took
        effect: the version moved from is revoked from the very instant of the move (an
        immediate revocation records both at once) or, for a scheduled one, the move was
        made by the scheduler (authored "HCP Packer") once it took effect, back to an
        older version or to none. A move by a person later is not a rollback."""
        prev = self.previous
        if prev is None or prev.revoke_at is None or prev.revoke_at > self.assignment.assigned_at:
            return False
        backwards = self.version is None or (self.version.number or 0) < (prev.number or 0)
        at_once = prev.revoke_at == self.assignment.assigned_at
        return backwards and (at_once or self.assignment.author_id == MANAGED_AUTHOR)


@dataclass(slots=True)
class ChannelDetail:
    channel: Channel
    timeline: Page[TimelineItem]
    assignable: list[Version]  # empty for a caller who cannot write


@dataclass(slots=True)
class VersionUse:
    """A version and the channels (visible to the caller) serving it."""

    version: Version
    channels: list[Channel]


class ChannelService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list_all(self, caller: Caller, bucket_name: str) -> list[Channel]:
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            items = ChannelRepo(conn).for_bucket(
                bucket.id, include_restricted=sees_restricted_channels(caller, bucket.id)
            )
            load_channels(conn, items, caller)
        return items

    def get(self, caller: Caller, bucket_name: str, name: str) -> Channel:
        with self.store.read_statement() as conn:
            return find_loaded_channel(conn, caller, bucket_name, name)

    def create(
        self,
        caller: Caller,
        bucket_name: str,
        name: str | None,
        fingerprint: str | None,
        restricted: bool,
    ) -> Channel:
        require_write(caller)
        name = validate_name("channel", name, field="name")
        now = utcnow()
        exists = already_exists(f"Channel {name} already exists.")
        try:
            with self.store.write(caller.project_id) as conn:
                bucket = bucket_or_404(conn, caller, bucket_name, write=True)
                generations.confine(conn, bucket.name, reveal=True)
                repo = ChannelRepo(conn)
                if repo.get(bucket.id, name) is not None:
                    raise exists
                version = _assignable(conn, bucket, fingerprint, now) if fingerprint else None
                channel = Channel(
                    id=new_id(),
                    bucket_id=bucket.id,
                    bucket_name=bucket.name,
                    name=name,
                    managed=False,
                    restricted=restricted,
                    version_id=None,
                    author_id=caller.name,
                    created_at=now,
                    updated_at=now,
                )
                repo.insert(channel)
                events = []
                if version is not None:
                    repo.assign(channel.id, version.id, caller.name, now)
                    channel.version_id, channel.author_id = version.id, caller.name
                    recording.with_builds(conn, [version])
                    events.append(recording.assign_event(channel, version, None))
                created = _reload(conn, channel.id, caller)
                change = recording.channel_change(
                    AuditAction.CREATE, "Created channel", created, events
                )
                record(conn, caller.project_id, caller, change)
        except IntegrityError:
            raise exists from None
        return created

    def update(
        self,
        caller: Caller,
        bucket_name: str,
        name: str,
        *,
        fingerprint: str | None,
        restricted: bool | None,
        update_mask: str | None,
    ) -> Channel:
        paths = parse_field_mask(update_mask, _CHANNEL_MASK)
        require_write(caller)
        now = utcnow()
        assigning = "version_fingerprint" in paths
        with self.store.write(caller.project_id) as conn:
            bucket, channel, version = lock_channel(
                conn, caller, bucket_name, name, fingerprint=fingerprint if assigning else None
            )
            generations.confine(conn, bucket.name, reveal=True)
            # HCP Packer moves a managed channel; its restriction is the owner's to set
            # (the Terraform provider sends mask `restricted` when it adopts `latest`).
            if channel.managed and assigning:
                raise precondition(
                    f'Can\'t update channel assignment on channel "{channel.name}". This channel '
                    "is managed by HCP Packer"
                )
            values: dict[str, Any] = {}
            previous_id = channel.version_id
            if "restricted" in paths and bool(restricted) != channel.restricted:
                values["restricted"] = channel.restricted = bool(restricted)
            if assigning:
                target = _found(bucket, fingerprint, version, now) if fingerprint else None
                target_id = target.id if target else None
                if target_id != channel.version_id:
                    values["version_id"] = channel.version_id = target_id
                    values["author_id"] = channel.author_id = caller.name
            if values:
                values["updated_at"] = channel.updated_at = now
                ChannelRepo(conn).update(channel.id, **values)
                if "version_id" in values:
                    ChannelRepo(conn).append_history(
                        channel.id, channel.version_id, caller.name, now
                    )
            # The channel as written, its version loaded as reads load it.
            load_channels(conn, [channel], caller)
            events = []
            if "version_id" in values:
                events.append(recording.reassigned(conn, channel, channel.version, previous_id))
            description = "Assigned version to channel" if assigning else "Updated channel"
            change = recording.channel_change(AuditAction.UPDATE, description, channel, events)
            record(conn, caller.project_id, caller, change)
        return channel

    def delete(self, caller: Caller, bucket_name: str, name: str) -> None:
        require_write(caller)
        with self.store.write(caller.project_id) as conn:
            bucket = bucket_or_404(conn, caller, bucket_name, write=True)
            channel = channel_or_404(conn, caller, bucket, name)
            if channel.managed:
                raise invalid(
                    f"Can't delete managed channel {channel.name}, it's controlled by HCP Packer"
                )
            ChannelRepo(conn).delete(channel.id)
            change = recording.channel_change(AuditAction.DELETE, "Deleted channel", channel)
            record(conn, caller.project_id, caller, change)

    def promote(
        self, caller: Caller, bucket_name: str, source_name: str | None, target_name: str | None
    ) -> Promotion:
        """AssignChannelVersion: copy the source channel's version to the target channel."""
        require_write(caller)
        if not source_name:
            raise invalid("source_channel is required.", field="source_channel")
        if not target_name:
            raise invalid("target_channel is required.", field="target_channel")
        now = utcnow()
        with self.store.write(caller.project_id) as conn:
            bucket = bucket_or_404(conn, caller, bucket_name, write=True)
            generations.confine(conn, bucket.name, reveal=True)
            target = channel_or_404(conn, caller, bucket, target_name, lock=True)
            if target.managed:
                raise precondition(f"Cannot assign to managed channel '{target.name}'")
            source = channel_or_404(conn, caller, bucket, source_name)
            if source.version_id is None:
                raise precondition(f"Channel {source.name} has no version assigned to copy.")
            version = VersionRepo(conn).get_by_id(source.version_id, lock=True)
            assert version is not None
            _check_assignable(version, now)
            previous_id = target.version_id
            moved = previous_id != version.id
            if moved:
                ChannelRepo(conn).assign(target.id, version.id, caller.name, now)
            source = _reload(conn, source.id, caller)
            target = _reload(conn, target.id, caller)
            events = []
            if moved:
                events.append(recording.reassigned(conn, target, target.version, previous_id))
            change = recording.channel_change(
                AuditAction.UPDATE,
                "Assigned version to channel",
                target,
                events,
                source_channel=event_payloads.channel(source),
            )
            record(conn, caller.project_id, caller, change)
        return Promotion(version=target.version, source=source, target=target)

    def history(
        self, caller: Caller, bucket_name: str, name: str, page: PageRequest
    ) -> Page[HistoryEntry]:
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            channel = channel_or_404(conn, caller, bucket, name)
            result = ChannelRepo(conn).history(channel.id, page)
            found = VersionRepo(conn).get_many(a.version_id for a in result.items if a.version_id)
            load_versions(conn, list(found.values()), caller)
        entries = [
            HistoryEntry(a, found.get(a.version_id) if a.version_id else None) for a in result.items
        ]
        return Page(
            items=entries,
            next_token=result.next_token,
            previous_token=result.previous_token,
            total=result.total,
        )

    # --- console read models ------------------------------------------------
    def overview(
        self,
        caller: Caller,
        bucket_name: str,
        *,
        include: str | None = None,
        limit: int = ASSIGNABLE_LIMIT,
    ) -> ChannelsOverview:
        """The bucket's channels (as ListChannels shows them to ``caller``) with their
        newest history entry and, for a writer, the versions a channel may serve (the
        newest ``limit``, plus the fingerprint ``include`` if it may be assigned)."""
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, bucket_name)
            repo = ChannelRepo(conn)
            items = repo.for_bucket(
                bucket.id, include_restricted=sees_restricted_channels(caller, bucket.id)
            )
            load_channels(conn, items, caller)
            last = repo.last_assignments(c.id for c in items)
            assignable = (
                repo.assignable(bucket.id, bucket.name, now=utcnow(), limit=limit, include=include)
                if can_write_bucket(caller, bucket.id)
                else []
            )
        return ChannelsOverview(
            bucket=bucket,
            channels=[ChannelSummary(c, last.get(c.id)) for c in items],
            assignable=assignable,
        )

    def detail(
        self,
        caller: Caller,
        bucket_name: str,
        name: str,
        page: PageRequest,
        *,
        limit: int = ASSIGNABLE_LIMIT,
    ) -> ChannelDetail:
        """A channel, a page of its history as moves (from which version to which) and,
        for a writer, the versions it may be given. 403 for a restricted channel the
        caller may not see, as GetChannel."""
        with self.store.read() as conn:
            channel = find_loaded_channel(conn, caller, bucket_name, name)
            repo = ChannelRepo(conn)
            result = repo.timeline(channel.id, page)
            # Rows alone (no builds): a channel only ever serves complete versions, whose
            # status depends on their revocation only.
            found = VersionRepo(conn).get_many(
                v
                for e in result.items
                for v in (e.assignment.version_id, e.previous_version_id)
                if v is not None
            )
            assignable = (
                repo.assignable(channel.bucket_id, channel.bucket_name, now=utcnow(), limit=limit)
                if can_write_bucket(caller, channel.bucket_id) and not channel.managed
                else []
            )
        items = [
            TimelineItem(
                assignment=e.assignment,
                version=found.get(e.assignment.version_id or ""),
                previous_id=e.previous_version_id,
                previous=found.get(e.previous_version_id or ""),
                first=e.seq == 1,
            )
            for e in result.items
        ]
        timeline = Page(
            items=items,
            next_token=result.next_token,
            previous_token=result.previous_token,
            total=result.total,
        )
        return ChannelDetail(channel=channel, timeline=timeline, assignable=assignable)

    def serving_version(self, caller: Caller, bucket_name: str, fingerprint: str) -> VersionUse:
        """A version (builds and artifacts loaded) and the channels the caller sees that
        serve it: what deleting it would touch."""
        with self.store.read() as conn:
            version = find_loaded_version(conn, caller, bucket_name, fingerprint)
            serving = [
                c for c in ChannelRepo(conn).pointing_at([version.id]) if can_see_channel(caller, c)
            ]
        return VersionUse(version=version, channels=serving)


def _reload(conn: Connection, channel_id: str, caller: Caller) -> Channel:
    channel = ChannelRepo(conn).get_by_id(channel_id)
    assert channel is not None
    load_channels(conn, [channel], caller)
    return channel


def _assignable(
    conn: Connection, bucket: Bucket, fingerprint: str | None, now: datetime
) -> Version:
    # Locking the row waits for a revocation being written in another transaction
    # (it may come from an ancestor in another bucket), so a version revoked
    # concurrently is never assigned.
    version = VersionRepo(conn).get(bucket.id, fingerprint or "", lock=True)
    return _found(bucket, fingerprint, version, now)


def _found(
    bucket: Bucket, fingerprint: str | None, version: Version | None, now: datetime
) -> Version:
    """The version looked up (and locked) for ``fingerprint``, if it can be assigned."""
    if version is None:
        raise not_found(
            f"Error: The version with fingerprint {fingerprint} does not exist in bucket "
            f"{bucket.name}."
        )
    _check_assignable(version, now)
    return version


def _check_assignable(version: Version, now: datetime) -> None:
    if not version.complete:
        raise precondition(
            f"Version {version.fingerprint} is incomplete (v0): only complete versions can be "
            "assigned to a channel."
        )
    if is_revoked(version.revoke_at, now):
        raise precondition(
            f"Version {version.name} ({version.fingerprint}) is revoked and cannot be assigned "
            "to a channel."
        )


__all__ = [
    "ASSIGNABLE_LIMIT",
    "ChannelDetail",
    "ChannelService",
    "ChannelSummary",
    "ChannelsOverview",
    "HistoryEntry",
    "Promotion",
    "TimelineItem",
    "VersionUse",
]
