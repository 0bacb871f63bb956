"""Buckets: one per image family; each comes with the managed `latest` channel."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from packyard.domain.models import MANAGED_AUTHOR, MANAGED_CHANNEL, Bucket, Caller, Channel
from packyard.domain.paging import Page, PageRequest
from packyard.domain.rules import utcnow, validate_description, validate_labels, validate_name
from packyard.errors import already_exists
from packyard.ids import new_id
from packyard.services.lookup import bucket_or_404, require_write
from packyard.services.views import load_buckets
from packyard.store.buckets import BucketRepo
from packyard.store.channels import ChannelRepo
from packyard.store.engine import Store
from packyard.store.revocation import RevocationRepo
from packyard.store.schema import versions


class BucketService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list_page(self, caller: Caller, page: PageRequest) -> Page[Bucket]:
        with self.store.read() as conn:
            result = BucketRepo(conn).list_page(caller.project_id, page)
            load_buckets(conn, result.items, caller)
        return result

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
        require_write(caller)
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
            bucket = bucket_or_404(conn, caller, name, lock=True)
            BucketRepo(conn).update(
                bucket.id, description=new_description, labels=new_labels, updated_at=utcnow()
            )
            updated = bucket_or_404(conn, caller, name)
            load_buckets(conn, [updated], caller)
        return updated

    def delete(self, caller: Caller, name: str) -> None:
        """Delete the bucket and everything under it."""
        require_write(caller)
        with self.store.write(caller.project_id) as conn:
            bucket = bucket_or_404(conn, caller, name, lock=True)
            # Versions in other buckets keep revocations inherited from this bucket's.
            RevocationRepo(conn).detach_copies(
                select(versions.c.id).where(versions.c.bucket_id == bucket.id),
                keep_bucket_id=bucket.id,
            )
            BucketRepo(conn).delete(bucket.id)  # cascades to versions, builds, channels...
