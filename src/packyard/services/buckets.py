"""Buckets: one per image family; each comes with the managed `latest` channel."""

from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from packyard.domain.access import visible_buckets
from packyard.domain.events import AuditAction
from packyard.domain.models import MANAGED_AUTHOR, MANAGED_CHANNEL, Bucket, Caller, Channel
from packyard.domain.overview import BucketOverview, BucketQuery, BucketSummary, DataSource
from packyard.domain.paging import Page, PageRequest
from packyard.domain.rules import utcnow, validate_description, validate_labels, validate_name
from packyard.domain.visibility import restricted_scope, sees_restricted_channels
from packyard.errors import already_exists
from packyard.ids import new_id
from packyard.services import recording
from packyard.services.journal import record
from packyard.services.lookup import bucket_or_404, require_project_write, require_write
from packyard.services.views import hidden_latest, load_buckets, load_channels, load_versions
from packyard.store import generations, overview
from packyard.store.ancestry import AncestryRepo
from packyard.store.buckets import BucketRepo
from packyard.store.channels import ChannelRepo
from packyard.store.engine import Store
from packyard.store.revocation import RevocationRepo
from packyard.store.schema import versions
from packyard.store.versions import VersionRepo

# What a bucket's page shows at most: parents of its latest version, child buckets, and
# versions offered in the data-source picker (the versions page lists them all).
OVERVIEW_PARENTS = 50
OVERVIEW_CHILDREN = 50
OVERVIEW_VERSIONS = 20


class BucketService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list_page(self, caller: Caller, page: PageRequest) -> Page[Bucket]:
        with self.store.read() as conn:
            result = BucketRepo(conn).list_page(
                caller.project_id, page, visible=visible_buckets(caller)
            )
            load_buckets(conn, result.items, caller)
        return result

    def search_page(
        self, caller: Caller, query: BucketQuery, page: PageRequest
    ) -> Page[BucketSummary]:
        """The project's buckets filtered by name and label (in SQL), one page in the
        query's order, each with its latest version (without builds) and the status of its
        parents, and its user channels. A fixed number of statements whatever the number of
        buckets, versions or channels. Like every read, a caller who may not see `latest`
        gets no latest version (``latest_hidden``); a caller with bucket grants only sees
        those buckets."""
        include = restricted_scope(caller)
        visible = visible_buckets(caller)
        with self.store.read() as conn:
            result = overview.search_buckets(conn, caller.project_id, query, page, visible=visible)
            ids = [b.id for b in result.items]
            hidden = hidden_latest(conn, caller, ids)
            chips = overview.channel_chips(conn, ids, include_restricted=include)
            latest_ids = [
                b.latest_version_id
                for b in result.items
                if b.latest_version_id and b.id not in hidden
            ]
            served = [c.version_id for group in chips.values() for c in group if c.version_id]
            # The rows show versions' names, statuses and revocations, not their builds.
            found = VersionRepo(conn).get_many([*latest_ids, *served])
            latest = [found[i] for i in dict.fromkeys(latest_ids) if i in found]
            overview.attach_parents_status(
                conn, latest, include_restricted=include, visible=visible
            )
        for b in result.items:
            shown = b.latest_version_id if b.id not in hidden else None
            b.latest_version = found.get(shown) if shown else None
            b.parents_status = b.latest_version.parents_status if b.latest_version else None
        for group in chips.values():
            for chip in group:
                chip.version = found.get(chip.version_id) if chip.version_id else None
        return Page(
            items=[
                BucketSummary(b, chips.get(b.id, []), latest_hidden=b.id in hidden)
                for b in result.items
            ],
            next_token=result.next_token,
            previous_token=result.previous_token,
        )

    def overview(
        self,
        caller: Caller,
        name: str,
        *,
        channel: str | None = None,
        fingerprint: str | None = None,
    ) -> BucketOverview:
        """A bucket with its latest version, channels, the latest version's parents, its
        child buckets and recent versions, read in one transaction; and the version a data
        source would use: the one ``channel`` serves, or the version ``fingerprint``
        (by default the first channel serving a version, unrestricted ones first)."""
        # Ancestry reaches into other buckets: their channels follow the caller's scope.
        include = restricted_scope(caller)
        visible = visible_buckets(caller)
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, name)
            load_buckets(conn, [bucket], caller)
            # `latest` always exists: absent from the caller's channels, it is hidden.
            items = ChannelRepo(conn).for_bucket(
                bucket.id, include_restricted=sees_restricted_channels(caller, bucket.id)
            )
            load_channels(conn, items, caller)
            latest_hidden = not any(c.managed for c in items)
            parents, parents_total = [], 0
            if bucket.latest_version is not None:
                found = AncestryRepo(conn).relations_page(
                    bucket.id,
                    parents_of=bucket.latest_version.id,
                    include_children=False,
                    children_channel_id=None,
                    include_restricted=include,
                    page=PageRequest(size=OVERVIEW_PARENTS),
                    visible=visible,
                )
                parents, parents_total = found.items, found.total or 0
            children, truncated = overview.child_relations(
                conn,
                bucket.id,
                include_restricted=include,
                limit=OVERVIEW_CHILDREN,
                visible=visible,
            )
            recent = overview.recent_versions(conn, bucket.id, OVERVIEW_VERSIONS)
            source = _data_source(conn, caller, bucket, items, channel, fingerprint)
        return BucketOverview(
            bucket=bucket,
            latest_hidden=latest_hidden,
            channels=items,
            parents=parents,
            parents_total=parents_total,
            children=children,
            children_truncated=truncated,
            versions=recent,
            source=source,
        )

    def get(self, caller: Caller, name: str) -> Bucket:
        with self.store.read() as conn:
            bucket = bucket_or_404(conn, caller, name)
            load_buckets(conn, [bucket], caller)
        return bucket

    def create(
        self,
        caller: Caller,
        name: str | None,
        description: str | None,
        labels: dict[str, str] | None,
    ) -> Bucket:
        require_project_write(caller)
        name = validate_name("bucket", name, field="name")
        now = utcnow()
        bucket = Bucket(
            id=new_id(),
            project_id=caller.project_id,
            name=name,
            description=validate_description(description),
            labels=validate_labels(labels),
            version_count=0,
            latest_version_id=None,
            created_at=now,
            updated_at=now,
        )
        exists = already_exists(f"Error: The bucket with identifier {name} already exists.")
        try:
            with self.store.write(caller.project_id) as conn:
                repo = BucketRepo(conn)
                if repo.get(caller.project_id, name) is not None:
                    raise exists
                repo.insert(bucket)
                ChannelRepo(conn).insert(
                    Channel(
                        id=new_id(),
                        bucket_id=bucket.id,
                        bucket_name=name,
                        name=MANAGED_CHANNEL,
                        managed=True,
                        restricted=True,
                        version_id=None,
                        author_id=MANAGED_AUTHOR,
                        created_at=now,
                        updated_at=now,
                    )
                )
                record(
                    conn,
                    caller.project_id,
                    caller,
                    recording.bucket_change(AuditAction.CREATE, "Created bucket", bucket),
                )
        except IntegrityError:
            raise exists from None
        return bucket

    def update(
        self,
        caller: Caller,
        name: str,
        description: str | None,
        labels: dict[str, str] | None,
    ) -> Bucket:
        """Replace description and labels (UpdateBucket has no field mask)."""
        require_write(caller)
        new_description = validate_description(description)
        new_labels = validate_labels(labels)
        with self.store.write(caller.project_id) as conn:
            bucket = bucket_or_404(conn, caller, name, write=True)
            generations.confine(conn, bucket.name)
            BucketRepo(conn).update(
                bucket.id, description=new_description, labels=new_labels, updated_at=utcnow()
            )
            updated = bucket_or_404(conn, caller, name)
            load_buckets(conn, [updated], caller)
            record(
                conn,
                caller.project_id,
                caller,
                recording.bucket_change(
                    AuditAction.UPDATE,
                    "Updated bucket",
                    updated,
                    before={"description": bucket.description, "labels": bucket.labels},
                    after={"description": new_description, "labels": new_labels},
                ),
            )
        return updated

    def delete(self, caller: Caller, name: str) -> None:
        """Delete the bucket and everything under it."""
        require_project_write(caller)
        with self.store.write(caller.project_id) as conn:
            bucket = bucket_or_404(conn, caller, name, write=True)
            # Versions in other buckets keep revocations inherited from this bucket's.
            RevocationRepo(conn).detach_copies(
                select(versions.c.id).where(versions.c.bucket_id == bucket.id),
                keep_bucket_id=bucket.id,
            )
            BucketRepo(conn).delete(bucket.id)  # cascades to versions, builds, channels...
            record(
                conn,
                caller.project_id,
                caller,
                recording.bucket_change(AuditAction.DELETE, "Deleted bucket", bucket),
            )


def _data_source(
    conn: Connection,
    caller: Caller,
    bucket: Bucket,
    visible: list[Channel],
    channel: str | None,
    fingerprint: str | None,
) -> DataSource:
    """The version a data source on ``bucket`` resolves to, among what ``caller`` sees."""
    if fingerprint:
        version = VersionRepo(conn).get(bucket.id, fingerprint)
        if version is None:
            return DataSource(error=f"This bucket has no version with fingerprint {fingerprint}.")
        load_versions(conn, [version], caller)
        return DataSource(version=version)
    if channel:
        chosen = next((c for c in visible if c.name == channel), None)
        if chosen is None:
            # A restricted channel reads as absent to whoever may not see it.
            return DataSource(error=f"This bucket has no channel {channel} you can use.")
    else:
        serving = sorted((c for c in visible if c.version), key=lambda c: (c.restricted, c.managed))
        if not serving:
            return DataSource(error="No channel of this bucket serves a version yet.")
        chosen = serving[0]
    if chosen.version is None:
        return DataSource(channel=chosen, error=f"Channel {chosen.name} serves no version yet.")
    return DataSource(channel=chosen, version=chosen.version)
